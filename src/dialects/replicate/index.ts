/** The Replicate dialect: its routes behind one auth (`Bearer` or the older `Token`), errors as problems. */
import { tenantAuth } from "../../middleware/auth";
import { bearerOrTokenKey } from "../keys";
import { replicateAccount } from "./account-routes";
import { replicateApp } from "./problem";
import { replicatePredictions } from "./routes";
import { replicateStream } from "./stream";

/** A file's own paths only: `/v1/files/{id}/stream` is a signed link, fetched without a key. */
const PATHS = ["/v1/account", "/v1/predictions", "/v1/predictions/*", "/v1/models/*", "/v1/deployments", "/v1/deployments/*", "/v1/webhooks/default/*", "/v1/files", "/v1/files/:id", "/v1/files/:id/download"];

export const replicate = replicateApp();
const auth = tenantAuth({ key: bearerOrTokenKey });
for (const path of PATHS) replicate.use(path, auth);
replicate.route("/", replicatePredictions);
replicate.route("/", replicateAccount);
replicate.route("/", replicateStream);

import { MAX_BODY_BYTES, createApp, errorBody, errorsAs, jsonBodies, mountDocs } from "./app";
import { bodyLimit } from "./middleware/body-limit";
import { dialects } from "./dialects";
import { EaselError } from "./errors";
import { backends } from "./routes/backends";
import { CALLBACK_MAX_BYTES, callbacks } from "./routes/callbacks";
import { health } from "./routes/health";
import { jobs } from "./routes/jobs";
import { models } from "./routes/models";
import { outputs } from "./routes/outputs";
import { webhooks } from "./routes/webhooks";
import { drainBody } from "./middleware/drain-body";

export { JobObject } from "../durable-objects/job/object";
export { BackendScheduler } from "../durable-objects/backend-scheduler";
export { TenantObject } from "../durable-objects/tenant";
export { ComfySocket } from "../durable-objects/comfy-socket";

const app = createApp();
app.use("*", drainBody({ maxBytes: MAX_BODY_BYTES }));
app.use("/internal/*", bodyLimit(CALLBACK_MAX_BYTES));
const limitClientBody = bodyLimit(MAX_BODY_BYTES);
app.use("*", async (c, next) => (c.req.path.startsWith("/internal/") ? next() : limitClientBody(c, next)));
app.use("*", jsonBodies);
app.route("/", health);
app.route("/", jobs);
app.route("/", models);
app.route("/", backends);
app.route("/", webhooks);
app.route("/", outputs);
app.route("/", callbacks);
app.route("/", dialects);
mountDocs(app);

app.notFound(() => {
  throw new EaselError(404, "not_found", "no such route");
});
app.onError(errorsAs(errorBody));

export default app;

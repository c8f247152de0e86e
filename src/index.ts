import { MAX_BODY_BYTES, createApp, errorBody, errorsAs, jsonBodies, mountDocs } from "./app";
import { bodyLimit } from "./middleware/body-limit";
import { dialects } from "./dialects";
import { dialectErrors } from "./dialects/error-shapes";
import { EaselError } from "./errors";
import { backends } from "./routes/backends";
import { CALLBACK_MAX_BYTES, callbacks } from "./routes/callbacks";
import { health } from "./routes/health";
import { jobs } from "./routes/jobs";
import { models } from "./routes/models";
import { outputs } from "./routes/outputs";
import { webhooks } from "./routes/webhooks";
import { drainBody } from "./middleware/drain-body";
import { jsonDepth } from "./middleware/json-depth";

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
app.use("*", jsonDepth);
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
// An error raised before routing (a body over the limit) answers in the calling API's own shape.
const canonicalErrors = errorsAs(errorBody);
app.onError((err, c) => (dialectErrors(c.req.path) ?? canonicalErrors)(err, c));

export default app;

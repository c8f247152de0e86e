/**
 * Cerebrium's predict (seed 004): synchronous without `webhook_endpoint`; with it, the run id at
 * once and the full result POSTed to the webhook.
 */
import { createRoute } from "@hono/zod-openapi";
import { createApp, errorsAs } from "../../app";
import { config } from "../../config";
import { submitJob } from "../../jobs/intake";
import { tenantAuth } from "../../middleware/auth";
import { rawOrBearerKey } from "../keys";
import { outputsBase64 } from "../outputs";
import { failureStatus, waitForEnd } from "../wait";
import { CerebriumRequestSchema, cerebriumAccepted, cerebriumError, cerebriumFields, fromCerebrium, toCerebrium } from "./translate";

export const cerebrium = createApp();
cerebrium.use("/cerebrium/*", tenantAuth({ key: rawOrBearerKey }));
cerebrium.onError(errorsAs(cerebriumError));

cerebrium.openapi(
  createRoute({
    method: "post",
    path: "/cerebrium/predict",
    tags: ["Cerebrium"],
    summary: "sd-img-2-img predict",
    request: { body: { content: { "application/json": { schema: CerebriumRequestSchema } }, required: true } },
    responses: {
      200: { description: "`{run_id, message, result}`; with a webhook_endpoint `{run_id, message}`, the result following there" },
      422: { description: "`{run_id: null, message}`" },
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const tenant = c.var.tenant;
    const { snapshot } = await submitJob(c.env, fromCerebrium(body), {
      tenant,
      dialect: "cerebrium",
      publicBaseUrl: config.publicBaseUrl(c.env, c.req.url),
      fields: cerebriumFields(body),
    });
    c.header("x-easel-run-id", snapshot.job.id);
    if (body.webhook_endpoint) return c.json(cerebriumAccepted(snapshot), 200);
    const done = await waitForEnd(c.env, snapshot.job.id, tenant, { signal: c.req.raw.signal, waitUntil: (p) => c.executionCtx.waitUntil(p) });
    return c.json(await toCerebrium(done, outputsBase64(c.env)), done.job.status === "succeeded" ? 200 : failureStatus(done.job));
  },
);

/**
 * Cerebrium's predict (seed 004) at Cerebrium's own paths: `/{app_name}/predict` (seed 004's
 * `run.cerebrium.ai/<app>/predict`) and v4's `/v4/{project_id}/{app_name}/{function}`, plus the
 * first release's `/cerebrium/predict` (the app named `cerebrium`). Synchronous by default; with
 * `webhook_endpoint` (or v4's `?async=true`) the run id at once and the full result POSTed later.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createApp, errorsAs } from "../../app";
import { config } from "../../config";
import { endpointRoute } from "../../jobs/endpoints";
import { submitJob } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import { failureStatus, syncWait } from "../../jobs/sync-wait";
import { tenantAuth, type AppEnv } from "../../middleware/auth";
import { countsTowardRate } from "../../middleware/submit-rate";
import { rawOrBearerKey } from "../keys";
import { JSON_HEADERS, jsonWithImages } from "../outputs";
import { outputPlaces } from "../../webhooks/body-slots";
import { CerebriumRequestSchema, cerebriumAccepted, cerebriumError, cerebriumFields, fromCerebrium, toCerebrium, type CerebriumRequest } from "./translate";

export const cerebrium = createApp();
const auth = tenantAuth({ key: rawOrBearerKey });
// Only a POST to exactly `/<one segment>/predict`: no other route of the gateway has that shape.
cerebrium.post("/:app_name/predict", auth);
cerebrium.use("/v4/*", auth);
cerebrium.onError(errorsAs(cerebriumError));

/**
 * Creates the job for an app. The app name may stand for a backend or a model (`ENDPOINTS`);
 * `webhook` is where the result goes (seed 004's body field, or v4's `webhookEndpoint`).
 */
async function submit(c: Context<AppEnv>, app: string, body: CerebriumRequest, webhook: { url: string | undefined; field: string }): Promise<JobSnapshot> {
  const route = endpointRoute(c.env, app, "img2img", { field: "app_name", message: `app ${app} does not serve img2img` });
  const { snapshot } = await submitJob(
    c.env,
    { ...fromCerebrium(body), webhook: webhook.url, ...route },
    {
      tenant: c.var.tenant,
      dialect: "cerebrium",
      publicBaseUrl: config.publicBaseUrl(c.env, c.req.url),
      fields: { ...cerebriumFields(body), webhook: webhook.field },
      rateCounted: c.var.rateCounted,
    },
  );
  c.header("x-easel-run-id", snapshot.job.id);
  return snapshot;
}

/** Waits for the job (a hang-up cancels it) and answers Cerebrium's body, a 4xx/5xx when it did not succeed. */
async function answerWhenDone(c: Context<AppEnv>, snapshot: JobSnapshot, extra: (done: JobSnapshot) => Record<string, unknown> = () => ({})) {
  const done = await syncWait(c, snapshot.job.id);
  return c.body(await jsonWithImages(c.env, done.output_keys, { ...(await toCerebrium(done, outputPlaces)), ...extra(done) }), done.job.status === "succeeded" ? 200 : failureStatus(done.job), JSON_HEADERS);
}

// Answers are described, not typed: a job that did not succeed answers the same body with a 4xx or 5xx.
const described = (description: string) => ({ description });
const Failure = described("`{run_id: null, message}`");
const body = { content: { "application/json": { schema: CerebriumRequestSchema } }, required: true };

for (const path of ["/cerebrium/predict", "/{app_name}/predict"] as const) {
  cerebrium.openapi(
    createRoute({
      method: "post",
      path,
      tags: ["Cerebrium"],
      summary: path === "/cerebrium/predict" ? "sd-img-2-img predict (the first release's alias)" : "sd-img-2-img predict at seed 004's own path",
      middleware: [countsTowardRate] as const,
      request: { params: path === "/cerebrium/predict" ? z.object({}) : z.object({ app_name: z.string().min(1).max(128) }), body },
      responses: {
        200: described("`{run_id, message, result}`; with a webhook_endpoint `{run_id, message}`, the result following there"),
        401: Failure,
        422: Failure,
      },
    }),
    async (c) => {
      const request = c.req.valid("json");
      const snapshot = await submit(c, c.req.param("app_name") ?? "cerebrium", request, { url: request.webhook_endpoint ?? undefined, field: "webhook_endpoint" });
      if (request.webhook_endpoint) return c.json(cerebriumAccepted(snapshot), 200);
      return answerWhenDone(c, snapshot);
    },
  );
}

cerebrium.openapi(
  createRoute({
    method: "post",
    path: "/v4/{project_id}/{app_name}/{function}",
    tags: ["Cerebrium"],
    summary: "Cerebrium v4: the app's function; `?async=true&webhookEndpoint=` answers at once and delivers there",
    middleware: [countsTowardRate] as const,
    request: {
      params: z.object({ project_id: z.string().min(1).max(128), app_name: z.string().min(1).max(128), function: z.string().min(1).max(128) }),
      query: z.object({ async: z.string().regex(/^(true|false)$/i, "true or false").optional(), webhookEndpoint: z.string().min(1).max(2048).optional() }),
      body,
    },
    responses: {
      200: described("`{run_id, run_time_ms, message, result}`"),
      202: described("With `?async=true`: `{run_id, message}`, the result POSTed to webhookEndpoint"),
      401: Failure,
      422: Failure,
    },
  }),
  async (c) => {
    const request = c.req.valid("json");
    const { app_name } = c.req.valid("param");
    const query = c.req.valid("query");
    // v4 takes the webhook in the query; the body's webhook_endpoint (seed 004) still counts.
    const webhook = query.webhookEndpoint ? { url: query.webhookEndpoint, field: "webhookEndpoint" } : { url: request.webhook_endpoint ?? undefined, field: "webhook_endpoint" };
    const snapshot = await submit(c, app_name, request, webhook);
    // Python's requests writes a True param as "True".
    if (query.async?.toLowerCase() === "true") return c.json(cerebriumAccepted(snapshot), 202);
    // Without async a webhook gets the result as well as the caller, as Cerebrium's proxy forwards it.
    return answerWhenDone(c, snapshot, (done) => ({ run_time_ms: done.job.metrics.run_ms }));
  },
);

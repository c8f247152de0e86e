/**
 * ModelsLab v3 (seed 002) and the same bodies at v6's paths: `key` in the body, `processing` at once then `fetch`. Errors are
 * `{"status": "error", "message"}` with a 4xx: ModelsLab's clients read `status` from the body
 * whatever the HTTP status.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createApp, errorsAs } from "../../app";
import { config } from "../../config";
import { EaselError } from "../../errors";
import { submitJob } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import { waitForEnd } from "../../jobs/sync-wait";
import { snapshotFor } from "../../jobs/tenant-job";
import { tenantAuth, type AppEnv } from "../../middleware/auth";
import { countsTowardRate } from "../../middleware/submit-rate";
import { bodyKey } from "../keys";
import { JSON_HEADERS, jsonWithImages } from "../outputs";
import { outputPlaces } from "../../webhooks/body-slots";
import { FetchByBodySchema, FetchRequestSchema, MODELSLAB_FIELDS, ModelsLabRequestSchema, fromModelsLab, modelsLabData, modelsLabError, toModelsLab } from "./translate";

export const modelslab = createApp();
modelslab.use("/api/v3/*", tenantAuth({ key: bodyKey }));
modelslab.use("/api/v6/*", tenantAuth({ key: bodyKey }));
modelslab.onError(errorsAs(modelsLabError));

const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const Reply = z.looseObject({ status: z.enum(["processing", "success", "error"]), id: z.string().optional() }).openapi("ModelsLabResponse");
// Described, not typed: a typed route could only answer c.json, and answers with base64 images are streamed.
const Failure = { description: "`{status: error, message}`" };

/**
 * How long a realtime generate call waits for its job before answering `processing`. ModelsLab's
 * realtime API holds its answer "a minimum amount of time" unless `instant_response` (its v6 pages),
 * so a fast job answers `success` with `output`, and code written against it reads `output` from
 * that answer. 5 s covers a small generation on a free GPU while staying well inside a client's
 * usual timeout (10 s and more); a job not done by then is fetched or delivered as before. The v3
 * and v6 `images` calls answer at once (the contract's `processing`, or `success` if already done).
 */
const REALTIME_WAIT_MS = 5_000;

/** The job in ModelsLab's shape, its base64 images (if asked for) streamed from R2. */
async function answer(c: Context<AppEnv>, snapshot: JobSnapshot) {
  return c.body(await jsonWithImages(c.env, snapshot.output_keys, await toModelsLab(c.env, snapshot, outputPlaces)), 200, JSON_HEADERS);
}

/** v3 (seed 002) and today's v6 paths take the same bodies; each answers with its own fetch path. */
const GENERATE = [
  { path: "/api/v3/text2img", type: "txt2img", fetch: "/api/v3/fetch", tag: "ModelsLab v3", waitMs: 0 },
  { path: "/api/v3/img2img", type: "img2img", fetch: "/api/v3/fetch", tag: "ModelsLab v3", waitMs: 0 },
  { path: "/api/v6/images/text2img", type: "txt2img", fetch: "/api/v6/images/fetch", tag: "ModelsLab v6", waitMs: 0 },
  { path: "/api/v6/images/img2img", type: "img2img", fetch: "/api/v6/images/fetch", tag: "ModelsLab v6", waitMs: 0 },
  { path: "/api/v6/realtime/text2img", type: "txt2img", fetch: "/api/v6/realtime/fetch", tag: "ModelsLab v6", waitMs: REALTIME_WAIT_MS },
  { path: "/api/v6/realtime/img2img", type: "img2img", fetch: "/api/v6/realtime/fetch", tag: "ModelsLab v6", waitMs: REALTIME_WAIT_MS },
] as const;

for (const { path, type, fetch, tag, waitMs } of GENERATE) {
  modelslab.openapi(
    createRoute({
      method: "post",
      path,
      tags: [tag],
      summary: `${type}: processing ${waitMs ? "once the job has not ended within 5 s (success if it has)" : "at once"}, then fetch (or the webhook); model_id picks the model`,
      middleware: [countsTowardRate] as const,
      request: { body: { content: { "application/json": { schema: ModelsLabRequestSchema } }, required: true } },
      responses: { 200: json(Reply, "`processing`, or `success` when already done"), 401: Failure, 422: Failure },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const { snapshot } = await submitJob(c.env, fromModelsLab(type, body), {
        tenant: c.var.tenant,
        dialect: "modelslab",
        publicBaseUrl: config.publicBaseUrl(c.env, c.req.url),
        fields: MODELSLAB_FIELDS,
        dialectData: modelsLabData(body, fetch),
        rateCounted: c.var.rateCounted,
        // ModelsLab's img2img needs no prompt.
        emptyPromptOk: type === "img2img",
      });
      c.header("x-easel-run-id", snapshot.job.id);
      // No hang-up cancel here: the job is the client's to fetch, or its webhook's, whether it waits or not.
      const shown = body.instant_response === true || !waitMs ? snapshot : await waitForEnd(c.env, snapshot.job.id, c.var.tenant, { maxMs: waitMs });
      return answer(c, shown);
    },
  );
}

/** A fetch: the caller's own job, else a 404 that tells nothing of anyone else's. */
async function fetchAnswer(c: Context<AppEnv>, id: string) {
  const snapshot = await snapshotFor(c.env, id, c.var.tenant);
  if (!snapshot) throw new EaselError(404, "not_found", "Request not found");
  return answer(c, snapshot);
}

for (const path of ["/api/v3/fetch/{id}", "/api/v6/images/fetch/{id}", "/api/v6/realtime/fetch/{id}"] as const) {
  modelslab.openapi(
    createRoute({
      method: "post",
      path,
      tags: [path.startsWith("/api/v3") ? "ModelsLab v3" : "ModelsLab v6"],
      summary: "A job's state: processing, success with output and meta, or error",
      request: { params: z.object({ id: z.string() }), body: { content: { "application/json": { schema: FetchRequestSchema } }, required: true } },
      responses: { 200: json(Reply, "The job"), 401: Failure, 404: Failure },
    }),
    (c) => fetchAnswer(c, c.req.valid("param").id),
  );
}

// ModelsLab's v6 fetch as its docs show it, `{"key", "request_id"}` in the body; v3's the same way.
for (const path of ["/api/v3/fetch", "/api/v6/images/fetch"] as const) {
  modelslab.openapi(
    createRoute({
      method: "post",
      path,
      tags: [path.startsWith("/api/v3") ? "ModelsLab v3" : "ModelsLab v6"],
      summary: "A job's state by the body's request_id: processing, success with output and meta, or error",
      request: { body: { content: { "application/json": { schema: FetchByBodySchema } }, required: true } },
      responses: { 200: json(Reply, "The job"), 401: Failure, 404: Failure, 422: Failure },
    }),
    (c) => fetchAnswer(c, c.req.valid("json").request_id),
  );
}

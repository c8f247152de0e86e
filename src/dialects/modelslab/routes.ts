/**
 * ModelsLab v3 (seed 002) and the same bodies at v6's paths: `key` in the body, `processing` at once then `fetch`. Errors are
 * `{"status": "error", "message"}` with a 4xx: ModelsLab's clients read `status` from the body
 * whatever the HTTP status.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createApp, errorsAs } from "../../app";
import { config } from "../../config";
import { EaselError } from "../../errors";
import { submitJob } from "../../jobs/intake";
import { snapshotFor } from "../../jobs/tenant-job";
import { tenantAuth } from "../../middleware/auth";
import { countsTowardRate } from "../../middleware/submit-rate";
import { bodyKey } from "../keys";
import { JSON_HEADERS, jsonWithImages } from "../outputs";
import { outputPlaces } from "../../webhooks/body-slots";
import { FetchRequestSchema, MODELSLAB_FIELDS, ModelsLabRequestSchema, fromModelsLab, modelsLabData, modelsLabError, toModelsLab } from "./translate";

export const modelslab = createApp();
modelslab.use("/api/v3/*", tenantAuth({ key: bodyKey }));
modelslab.use("/api/v6/*", tenantAuth({ key: bodyKey }));
modelslab.onError(errorsAs(modelsLabError));

const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const Reply = z.looseObject({ status: z.enum(["processing", "success", "error"]), id: z.string().optional() }).openapi("ModelsLabResponse");
// Described, not typed: a typed route could only answer c.json, and answers with base64 images are streamed.
const Failure = { description: "`{status: error, message}`" };

/** v3 (seed 002) and today's v6 paths take the same bodies; each answers with its own fetch path. */
const GENERATE = [
  { path: "/api/v3/text2img", type: "txt2img", fetch: "/api/v3/fetch", tag: "ModelsLab v3" },
  { path: "/api/v3/img2img", type: "img2img", fetch: "/api/v3/fetch", tag: "ModelsLab v3" },
  { path: "/api/v6/images/text2img", type: "txt2img", fetch: "/api/v6/images/fetch", tag: "ModelsLab v6" },
  { path: "/api/v6/images/img2img", type: "img2img", fetch: "/api/v6/images/fetch", tag: "ModelsLab v6" },
  { path: "/api/v6/realtime/text2img", type: "txt2img", fetch: "/api/v6/realtime/fetch", tag: "ModelsLab v6" },
  { path: "/api/v6/realtime/img2img", type: "img2img", fetch: "/api/v6/realtime/fetch", tag: "ModelsLab v6" },
] as const;

for (const { path, type, fetch, tag } of GENERATE) {
  modelslab.openapi(
    createRoute({
      method: "post",
      path,
      tags: [tag],
      summary: `${type}: processing at once, then fetch (or the webhook); model_id picks the model`,
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
      });
      c.header("x-easel-run-id", snapshot.job.id);
      return c.body(await jsonWithImages(c.env, snapshot.output_keys, await toModelsLab(c.env, snapshot, outputPlaces)), 200, JSON_HEADERS);
    },
  );
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
    async (c) => {
      const snapshot = await snapshotFor(c.env, c.req.valid("param").id, c.var.tenant);
      if (!snapshot) throw new EaselError(404, "not_found", "Request not found");
      return c.body(await jsonWithImages(c.env, snapshot.output_keys, await toModelsLab(c.env, snapshot, outputPlaces)), 200, JSON_HEADERS);
    },
  );
}

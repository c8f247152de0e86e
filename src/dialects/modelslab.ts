/**
 * ModelsLab (stablediffusionapi.com) v3, seed 002: `key` in the body, numbers as strings,
 * `processing` then `fetch`, `{"status": "error", "message"}` for errors.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createApp, errorsAs } from "../app";
import type { Env } from "../env";
import { EaselError } from "../errors";
import { submitJob, type IntakeRequest } from "../jobs/intake";
import type { JobSnapshot } from "../jobs/results";
import { tenantForKey, type AppEnv } from "../middleware/auth";
import { outputsBase64, outputUrls, publicBase, snapshotFor, type ImagesAsBase64 } from "./shared";

/** ModelsLab sends numbers as strings ("512") and optional fields as null. */
const num = z.preprocess((v) => (v === null || v === "" ? undefined : typeof v === "string" ? Number(v) : v), z.number().optional());
const str = z.preprocess((v) => (v === null ? undefined : v), z.string().optional());

export const ModelsLabRequestSchema = z
  .looseObject({
    key: z.string().optional(),
    prompt: z.string(),
    negative_prompt: str,
    init_image: str,
    width: num,
    height: num,
    samples: num,
    num_inference_steps: num,
    guidance_scale: num,
    strength: num,
    seed: num,
    base64: str,
    webhook: str,
    track_id: z.preprocess((v) => (v === null ? undefined : typeof v === "number" ? String(v) : v), z.string().optional()),
    model_id: str,
  })
  .openapi("ModelsLabRequest");
export type ModelsLabRequest = z.infer<typeof ModelsLabRequestSchema>;

export const MODELSLAB_FIELDS = { steps: "num_inference_steps", model: "model_id" } as const;

/** Before the generation: what ModelsLab's clients expect to see back as `meta`. */
export function fromModelsLab(type: "txt2img" | "img2img", body: ModelsLabRequest): IntakeRequest {
  return {
    type,
    prompt: body.prompt,
    negative_prompt: body.negative_prompt,
    init_image: type === "img2img" ? body.init_image : undefined,
    width: body.width,
    height: body.height,
    samples: body.samples,
    steps: body.num_inference_steps,
    guidance_scale: body.guidance_scale,
    strength: body.strength,
    seed: body.seed,
    model: body.model_id,
    webhook: body.webhook,
    track_id: body.track_id,
  };
}

const fetchUrl = (snapshot: JobSnapshot) => `${snapshot.input.public_base_url}/api/v3/fetch/${snapshot.job.id}`;

function meta(snapshot: JobSnapshot) {
  const { spec } = snapshot.input;
  return {
    H: spec.height,
    W: spec.width,
    guidance_scale: spec.guidance_scale,
    model: spec.model ?? null,
    n_samples: spec.samples,
    negative_prompt: spec.negative_prompt,
    prompt: spec.prompt,
    seed: spec.seed,
    steps: spec.steps,
    strength: spec.type === "img2img" ? spec.strength : null,
    file_prefix: snapshot.job.id,
  };
}

/** The job in ModelsLab's shape: `processing`, `success` with `output`, or `error`. */
export async function toModelsLab(env: Env, snapshot: JobSnapshot, images: ImagesAsBase64): Promise<Record<string, unknown>> {
  const { job } = snapshot;
  const track = { track_id: job.track_id ?? null };
  if (job.status === "queued" || job.status === "running") {
    // "messege" is ModelsLab's own spelling, which its clients read.
    return { status: "processing", id: job.id, eta: Math.max(1, Math.round(snapshot.input.spec.samples * 2)), fetch_result: fetchUrl(snapshot), messege: "Request processing", output: [], ...track, meta: meta(snapshot) };
  }
  if (job.status === "succeeded") {
    const output = snapshot.input.dialect_data.base64 === true ? await images(snapshot) : await outputUrls(env, snapshot);
    return { status: "success", generationTime: job.metrics.run_ms / 1000, id: job.id, output, ...track, meta: meta(snapshot) };
  }
  return { status: "error", id: job.id, message: job.error?.message ?? `the job was ${job.status}`, ...track };
}

export const modelsLabError = (err: EaselError) => ({ status: "error", message: err.message, ...(err.details ? { errors: err.details } : {}) });

export const modelslab = createApp();
modelslab.onError(errorsAs(modelsLabError));

async function tenantFromBody(c: Context<AppEnv>, key: string | undefined): Promise<string> {
  const tenant = await tenantForKey(c.env, key);
  if (!tenant) throw new EaselError(401, "unauthorized", "Invalid API key");
  return tenant;
}

const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const Reply = z.looseObject({ status: z.enum(["processing", "success", "error"]), id: z.string().optional() }).openapi("ModelsLabResponse");

for (const [path, type] of [
  ["/api/v3/text2img", "txt2img"],
  ["/api/v3/img2img", "img2img"],
] as const) {
  modelslab.openapi(
    createRoute({
      method: "post",
      path,
      tags: ["ModelsLab v3"],
      summary: `ModelsLab ${type}`,
      request: { body: { content: { "application/json": { schema: ModelsLabRequestSchema } }, required: true } },
      responses: { 200: json(Reply, "processing, or success when already done") },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const tenant = await tenantFromBody(c, body.key);
      const { snapshot } = await submitJob(c.env, fromModelsLab(type, body), {
        tenant,
        dialect: "modelslab",
        publicBaseUrl: publicBase(c),
        fields: MODELSLAB_FIELDS,
        dialectData: { base64: body.base64 === "yes" },
      });
      c.header("x-easel-run-id", snapshot.job.id);
      return c.json(await toModelsLab(c.env, snapshot, (s) => outputsBase64(c.env, s)), 200);
    },
  );
}

modelslab.openapi(
  createRoute({
    method: "post",
    path: "/api/v3/fetch/{id}",
    tags: ["ModelsLab v3"],
    summary: "Fetch a ModelsLab job",
    request: {
      params: z.object({ id: z.string() }),
      body: { content: { "application/json": { schema: z.looseObject({ key: z.string().optional() }) } }, required: true },
    },
    responses: { 200: json(Reply, "The job"), 404: { description: "No such job" } },
  }),
  async (c) => {
    const tenant = await tenantFromBody(c, c.req.valid("json").key);
    const snapshot = await snapshotFor(c.env, c.req.valid("param").id, tenant);
    if (!snapshot) throw new EaselError(404, "not_found", "Request not found");
    return c.json(await toModelsLab(c.env, snapshot, (s) => outputsBase64(c.env, s)), 200);
  },
);

/** ModelsLab (stablediffusionapi.com) v3 bodies to and from the canonical job (seed 002). */
import { z } from "@hono/zod-openapi";
import type { Env } from "../../env";
import type { EaselError } from "../../errors";
import type { IntakeOptions, IntakeRequest } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import { outputUrls, type ImagesAsBase64 } from "../outputs";

/** ModelsLab's clients send numbers as strings ("512") and optional fields as null. */
const num = z.preprocess((v) => (v === null || v === "" ? undefined : typeof v === "string" ? Number(v) : v), z.number().optional());
const str = z.preprocess((v) => (v === null ? undefined : v), z.string().optional());
/** A yes/no field: `"yes"`/`"no"` as ModelsLab documents it, or `true`/`false` as its SDKs send it. */
const yesNo = z
  .union([z.enum(["yes", "no", ""]), z.boolean()], { error: '"yes", "no", true or false' })
  .nullish()
  .transform((v) => (v === "yes" || v === true ? true : v === "no" || v === false ? false : undefined));

export const ModelsLabRequestSchema = z
  .looseObject({
    key: str,
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
    base64: yesNo,
    webhook: str,
    track_id: z.preprocess((v) => (v === null ? undefined : typeof v === "number" ? String(v) : v), z.string().optional()),
    model_id: str,
  })
  .openapi("ModelsLabRequest");
export type ModelsLabRequest = z.infer<typeof ModelsLabRequestSchema>;

export const FetchRequestSchema = z.looseObject({ key: str }).openapi("ModelsLabFetchRequest");

export const MODELSLAB_FIELDS = { steps: "num_inference_steps", model: "model_id" } as const satisfies IntakeOptions["fields"];

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

/**
 * What the job keeps for rendering later: whether the client asked for base64 instead of links,
 * and the fetch path of the API version it came through (`/api/v3/fetch`, `/api/v6/images/fetch`...).
 */
export const modelsLabData = (body: ModelsLabRequest, fetchPath = "/api/v3/fetch") => ({ base64: body.base64 === true, fetch_path: fetchPath });

const fetchUrl = (snapshot: JobSnapshot) => {
  const path = snapshot.input.dialect_data.fetch_path;
  return `${snapshot.input.public_base_url}${typeof path === "string" ? path : "/api/v3/fetch"}/${snapshot.job.id}`;
};

/** The generation's settings under ModelsLab's names, with every field its own `meta` carries. */
function meta(snapshot: JobSnapshot) {
  const { spec } = snapshot.input;
  return {
    H: spec.height,
    W: spec.width,
    enable_attention_slicing: "true",
    file_prefix: snapshot.job.id,
    guidance_scale: spec.guidance_scale,
    model: spec.model ?? null,
    n_samples: spec.samples,
    negative_prompt: spec.negative_prompt,
    outdir: "out",
    prompt: spec.prompt,
    revision: "fp16",
    safety_checker: "none",
    seed: spec.seed,
    steps: spec.steps,
    strength: spec.type === "img2img" ? spec.strength : null,
    vae: null,
  };
}

/** The job in ModelsLab's shape: `processing` (with `track_id`), `success` with `output` and `meta`, or `error`. */
export async function toModelsLab(env: Env, snapshot: JobSnapshot, images: ImagesAsBase64): Promise<Record<string, unknown>> {
  const { job } = snapshot;
  if (job.status === "queued" || job.status === "running") {
    // "messege" is ModelsLab's own spelling, which its clients read.
    return { status: "processing", id: job.id, eta: Math.max(1, snapshot.input.spec.samples * 2), fetch_result: fetchUrl(snapshot), messege: "Request processing", output: [], track_id: job.track_id ?? null, meta: meta(snapshot) };
  }
  if (job.status === "succeeded") {
    const output = snapshot.input.dialect_data.base64 === true ? await images(snapshot) : await outputUrls(env, snapshot);
    return { status: "success", generationTime: job.metrics.run_ms / 1000, id: job.id, output, meta: meta(snapshot) };
  }
  return { status: "error", id: job.id, message: job.error?.message ?? `the job was ${job.status}` };
}

/**
 * The webhook gets the same body, with `track_id` to tell requests apart; a job that did not
 * succeed is `"status": "failed"`, ModelsLab's failure payload, which its webhook handlers branch on.
 */
export async function toModelsLabWebhook(env: Env, snapshot: JobSnapshot, images: ImagesAsBase64): Promise<Record<string, unknown>> {
  const body = await toModelsLab(env, snapshot, images);
  return { ...body, ...(body.status === "error" ? { status: "failed" } : {}), track_id: snapshot.job.track_id ?? null };
}

export const modelsLabError = (err: EaselError) => ({ status: "error", message: err.message, ...(err.details ? { errors: err.details } : {}) });

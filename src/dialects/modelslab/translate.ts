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
/**
 * A yes/no field: `"yes"`/`"no"` as ModelsLab documents it, `true`/`false` as its SDKs and its v6
 * pages send it, or those as strings (`"true"`, as a form or a query string carries a boolean).
 */
const yesNo = z
  .union([z.enum(["yes", "no", "true", "false", ""]), z.boolean()], { error: '"yes", "no", true or false' })
  .nullish()
  .transform((v) => (v === "yes" || v === "true" || v === true ? true : v === "no" || v === "false" || v === false ? false : undefined));

export const ModelsLabRequestSchema = z
  .looseObject({
    key: str,
    // Required for text2img only: ModelsLab's img2img needs just key, model_id and init_image.
    prompt: str,
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
    instant_response: yesNo,
    webhook: str,
    track_id: z.preprocess((v) => (v === null ? undefined : typeof v === "number" ? String(v) : v), z.string().optional()),
    model_id: str,
  })
  .openapi("ModelsLabRequest");
export type ModelsLabRequest = z.infer<typeof ModelsLabRequestSchema>;

export const FetchRequestSchema = z.looseObject({ key: str }).openapi("ModelsLabFetchRequest");
/** The fetch of ModelsLab's v6 docs (and v3's body form): the id in the body as `request_id`. */
export const FetchByBodySchema = z
  .looseObject({ key: str, request_id: z.union([z.string(), z.number()]).transform(String) })
  .openapi("ModelsLabFetchByBodyRequest");

export const MODELSLAB_FIELDS = { steps: "num_inference_steps", model: "model_id" } as const satisfies IntakeOptions["fields"];

/**
 * An img2img without a prompt has the empty one (the route lets it through: `emptyPromptOk`), and
 * without `width` and `height` the init image's own size, as ModelsLab's v6 img2img page says
 * ("the dimensions of the generated image will be the same as the dimensions of the init_image").
 */
export function fromModelsLab(type: "txt2img" | "img2img", body: ModelsLabRequest): IntakeRequest {
  const img2img = type === "img2img";
  return {
    type,
    prompt: img2img ? (body.prompt ?? "") : body.prompt,
    negative_prompt: body.negative_prompt,
    init_image: img2img ? body.init_image : undefined,
    width: body.width,
    height: body.height,
    size_from_image: img2img && body.width === undefined && body.height === undefined ? { rule: "own" } : undefined,
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
    const fetch_result = fetchUrl(snapshot);
    // "messege" is ModelsLab's old spelling, which older clients read; "message" the one newer ones read.
    // No `future_links`: an output's key is fixed only once the backend has answered (an A1111 batch
    // puts a grid first, and its images are kept as image_1…), so a link signed now could name nothing.
    return {
      status: "processing",
      id: job.id,
      eta: Math.max(1, snapshot.input.spec.samples * 2),
      fetch_result,
      messege: "Request processing",
      message: "Request processing",
      tip: `Your image is processing in the background; fetch it from ${fetch_result}`,
      output: [],
      track_id: job.track_id ?? null,
      meta: meta(snapshot),
    };
  }
  if (job.status === "succeeded") {
    // `proxy_links` are ModelsLab's second copy of the image URLs, links whatever `base64` says: the
    // same signed links as `output` (with base64, links beside the images, not the images twice).
    const links = await outputUrls(env, snapshot);
    const output = snapshot.input.dialect_data.base64 === true ? await images(snapshot) : links;
    return { status: "success", generationTime: job.metrics.run_ms / 1000, id: job.id, output, proxy_links: links, meta: meta(snapshot) };
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

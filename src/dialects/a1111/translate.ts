/** AUTOMATIC1111's web API payloads to and from the canonical job (seeds 003 and 001). */
import { z } from "@hono/zod-openapi";
import { invalid, type EaselError } from "../../errors";
import type { IntakeOptions, IntakeRequest } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import type { GenerationSpec } from "../../jobs/spec";
import { a1111Batch } from "../../backends/a1111";
import type { Base64Image } from "../../webhooks/body-slots";
import { pyBool, pyFloat, pyInt } from "../coerce";
import { modelOf } from "./infotext";

/** Numbers and booleans are read as A1111's pydantic v1 reads them (`"steps": "20"` is 20): ./coerce.ts. */
export const A1111RequestSchema = z
  .looseObject({
    prompt: z.string().optional(),
    negative_prompt: z.string().optional(),
    steps: pyInt().optional(),
    cfg_scale: pyFloat().optional(),
    width: pyInt().optional(),
    height: pyInt().optional(),
    batch_size: pyInt().pipe(z.number().min(1)).optional(),
    n_iter: pyInt().pipe(z.number().min(1)).optional(),
    // A1111 takes None as -1 (a random seed): `get_fixed_seed`.
    seed: pyInt().nullish(),
    // A1111 defaults these to None, so clients send null for them.
    sampler_name: z.string().nullish(),
    sampler_index: z.string().nullish(),
    denoising_strength: pyFloat().optional(),
    init_images: z.array(z.string()).nullish(),
    include_init_images: pyBool().optional(),
    send_images: pyBool().optional(),
    override_settings: z.record(z.string(), z.unknown()).nullish(),
    alwayson_scripts: z.record(z.string(), z.unknown()).nullish(),
  })
  .openapi("A1111Request");
export type A1111Request = z.infer<typeof A1111RequestSchema>;

/**
 * A1111's names for the canonical fields, so a 422 points at what the client sent; `under` is the
 * envelope around the payload (`input.` for RunPod, `task.content.` for SD-on-EKS).
 */
export const a1111Fields = (under = "", body: { n_iter?: number | null } = {}) =>
  ({
    prompt: `${under}prompt`,
    negative_prompt: `${under}negative_prompt`,
    steps: `${under}steps`,
    width: `${under}width`,
    height: `${under}height`,
    seed: `${under}seed`,
    init_image: `${under}init_images.0`,
    strength: `${under}denoising_strength`,
    guidance_scale: `${under}cfg_scale`,
    // The job's images are batch_size × n_iter: too many is the iterations' doing when there are several.
    samples: (body.n_iter ?? 1) > 1 ? `${under}n_iter` : `${under}batch_size`,
    model: `${under}override_settings.sd_model_checkpoint`,
    pass_through: under,
  }) satisfies IntakeOptions["fields"];

/** Fields the canonical job models; every other field goes to the backend untouched. */
/** (`n_iter` is both: the job counts `batch_size` × `n_iter` images, and its A1111 makes them in that many batches.) */
const MAPPED = new Set(["prompt", "negative_prompt", "steps", "cfg_scale", "width", "height", "batch_size", "seed", "sampler_name", "sampler_index", "denoising_strength", "init_images", "include_init_images"]);

const named = (v: unknown): string | undefined => (typeof v === "string" && v ? v : undefined);

/**
 * The checkpoint a request asks for, in the order A1111 applies them, else the tenant's option;
 * and the field a 422 about it names.
 */
export function requestedModel(body: A1111Request, tenantDefault: unknown, under = ""): { model: string | undefined; field: string } {
  const override = named(body.override_settings?.sd_model_checkpoint);
  const script = named(body.alwayson_scripts?.sd_model_checkpoint);
  if (!override && script) return { model: script, field: `${under}alwayson_scripts.sd_model_checkpoint` };
  return { model: override ?? named(tenantDefault), field: `${under}override_settings.sd_model_checkpoint` };
}

export function fromA1111(type: "txt2img" | "img2img", body: A1111Request, model: string | undefined, under = ""): IntakeRequest {
  // A job runs one source image: a second would be dropped without a word (A1111 spreads several
  // over the batch). A txt2img ignores the field, as A1111's does.
  if (type === "img2img" && (body.init_images?.length ?? 0) > 1) throw invalid(`${under}init_images`, "one init image per request");
  return {
    type,
    prompt: body.prompt ?? "",
    negative_prompt: body.negative_prompt,
    init_image: type === "img2img" ? (body.init_images?.[0] ?? undefined) : undefined,
    strength: body.denoising_strength,
    steps: body.steps,
    guidance_scale: body.cfg_scale,
    width: body.width,
    height: body.height,
    samples: (body.batch_size ?? 1) * (body.n_iter ?? 1),
    // -1 is A1111's "random".
    seed: body.seed === -1 || body.seed === null ? undefined : body.seed,
    sampler: body.sampler_name ?? body.sampler_index ?? undefined,
    model,
    a1111_extra: passThrough(body),
  };
}

/**
 * What goes to the backend untouched. `alwayson_scripts.sd_model_checkpoint` (SD-on-EKS's way to
 * name the model, read by `requestedModel`) is no script: A1111 refuses a request naming it as one.
 */
function passThrough(body: A1111Request): Record<string, unknown> {
  const extra = Object.fromEntries(Object.entries(body).filter(([k]) => !MAPPED.has(k)));
  const scripts = body.alwayson_scripts;
  if (!scripts || !("sd_model_checkpoint" in scripts)) return extra;
  const { sd_model_checkpoint: _model, ...rest } = scripts;
  return { ...extra, alwayson_scripts: rest };
}

/** The request as A1111 echoes it in `parameters`: img2img leaves out the images unless `include_init_images`. */
export function a1111Parameters(type: "txt2img" | "img2img", body: A1111Request): Record<string, unknown> {
  const { include_init_images, ...rest } = body;
  return type === "img2img" && !include_init_images ? { ...rest, init_images: null, mask: null } : rest;
}

/** A1111's infotext, written as A1111 writes it, for an image whose backend wrote none. */
function infotext(spec: GenerationSpec, seed: number, model: { name: string | null; hash: string | null }): string {
  const params = [
    `Steps: ${spec.steps}`,
    spec.sampler && `Sampler: ${spec.sampler}`,
    `CFG scale: ${spec.guidance_scale}`,
    `Seed: ${seed}`,
    `Size: ${spec.width}x${spec.height}`,
    model.hash && `Model hash: ${model.hash}`,
    model.name && `Model: ${model.name}`,
    spec.type === "img2img" && `Denoising strength: ${spec.strength}`,
  ];
  const lines = [spec.prompt, spec.negative_prompt && `Negative prompt: ${spec.negative_prompt}`, params.filter(Boolean).join(", ")];
  return lines.filter(Boolean).join("\n");
}

/** `YYYYMMDDhhmmss`, as A1111 writes `job_timestamp`. */
const timestamp = (iso: string): string => iso.replace(/[-:T]/g, "").slice(0, 14);

/**
 * A1111's answer: the images, the request echoed, and `info` as the JSON string A1111 writes.
 * `written` is the infotext each image carries (./infotext.ts `writtenInfotexts`): `info` says
 * what the image says, and names the model the backend reported.
 */
export function toA1111Response(snapshot: JobSnapshot, images: Base64Image[], parameters: unknown, written: (string | undefined)[] = []) {
  const { job } = snapshot;
  const { spec } = snapshot.input;
  const seeds = job.output.map((o) => o.seed ?? spec.seed);
  const model = modelOf(written[0], job.model);
  const info = {
    prompt: spec.prompt,
    all_prompts: seeds.map(() => spec.prompt),
    negative_prompt: spec.negative_prompt,
    all_negative_prompts: seeds.map(() => spec.negative_prompt),
    seed: spec.seed,
    all_seeds: seeds,
    subseed: -1,
    all_subseeds: seeds.map(() => -1),
    subseed_strength: 0,
    width: spec.width,
    height: spec.height,
    sampler_name: spec.sampler ?? null,
    cfg_scale: spec.guidance_scale,
    steps: spec.steps,
    batch_size: a1111Batch(spec).batch_size,
    restore_faces: false,
    face_restoration_model: null,
    sd_model_name: model.name,
    sd_model_hash: model.hash,
    seed_resize_from_w: -1,
    seed_resize_from_h: -1,
    denoising_strength: spec.type === "img2img" ? spec.strength : null,
    extra_generation_params: {},
    index_of_first_image: 0,
    infotexts: seeds.map((seed, i) => written[i] ?? infotext(spec, seed, model)),
    styles: [],
    job_timestamp: timestamp(job.started_at ?? job.created_at),
    clip_skip: 1,
    is_using_inpainting_conditioning: false,
  };
  return { images, parameters, info: JSON.stringify(info) };
}

/** Errors as A1111 gives them: FastAPI's `detail` for validation, A1111's envelope otherwise. */
export function a1111Error(err: EaselError) {
  if (err.status === 422) {
    const details = err.details ?? [{ path: "", message: err.message }];
    return { detail: details.map((d) => ({ loc: ["body", ...(d.path ? d.path.split(".") : [])], msg: d.message, type: "value_error" })) };
  }
  return { error: err.code, detail: "", body: "", errors: err.message };
}

/**
 * A1111's 401 behind `--api-auth`: the `HTTPException` of `Api.auth` in its `api_middleware`'s
 * envelope. FastAPI's `HTTPBasic` raises it as "Not authenticated" when no credentials came at all.
 */
export function a1111Unauthorized(credentialsSent: boolean) {
  const detail = credentialsSent ? "Incorrect username or password" : "Not authenticated";
  return { error: "HTTPException", detail, body: "", errors: `401: ${detail}` };
}

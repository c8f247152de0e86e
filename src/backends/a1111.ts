import type { BackendConfig } from "../config";
import type { GenerationSpec } from "../jobs/spec";
import { Base64Bytes, jsonBody } from "../lib/json-slots";
import { a1111Headers } from "./a1111-api";
import { readA1111Progress, skipA1111, stoppable } from "./a1111-progress";
import { a1111Arrival } from "./a1111-task";
import { callBackend, callBackendForImages, failed, parseJsonObject, statusFailure, storedImages, type ImageAnswer } from "./http";
import { backendModelName, modelKey } from "./models";
import type { BackendAdapter, GenerationRequest, ModelInfo, Outcome, ProgressRequest } from "./types";

/**
 * The A1111 request body for a spec (its image as `Base64Bytes`, see `jsonBody`); RunPod's worker
 * takes the same payload inside `input`. `model` is the checkpoint as this backend names it.
 */
export function a1111Payload(spec: GenerationSpec, initImage?: Uint8Array, model = spec.model): Record<string, unknown> {
  const extra = spec.a1111_extra ?? {};
  const override = { ...(extra.override_settings as Record<string, unknown> | undefined) };
  if (model) override.sd_model_checkpoint = model;
  return {
    ...extra,
    // A backend is shared: nothing one request sends may outlast it there (settings kept, files written).
    ...SHARED_BACKEND_SAFE,
    // Every image is kept in R2, whatever a client's send_images says (its dialect answers without them).
    send_images: true,
    prompt: spec.prompt,
    negative_prompt: spec.negative_prompt,
    seed: spec.seed,
    steps: spec.steps,
    cfg_scale: spec.guidance_scale,
    width: spec.width,
    height: spec.height,
    ...a1111Batch(spec),
    ...(spec.sampler ? { sampler_name: spec.sampler } : {}),
    ...(Object.keys(override).length ? { override_settings: override } : {}),
    ...(spec.type === "img2img" && initImage ? { init_images: [new Base64Bytes(initImage)], denoising_strength: spec.strength } : {}),
  };
}

/**
 * A job's images as A1111 makes them: `batch_size` at once, `n_iter` times. The job counts
 * `samples`, their product; a client's own `n_iter` (kept with its pass-through fields) keeps each
 * batch as small as it asked, for the GPU's memory.
 */
export function a1111Batch(spec: Pick<GenerationSpec, "samples" | "a1111_extra">): { batch_size: number; n_iter: number } {
  const n = spec.a1111_extra?.n_iter;
  const nIter = typeof n === "number" && Number.isInteger(n) && n >= 1 && spec.samples % n === 0 ? n : 1;
  return { batch_size: spec.samples / nIter, n_iter: nIter };
}

/** Pass-through fields forced to values that leave a shared A1111 as the request found it. */
export const SHARED_BACKEND_SAFE = {
  override_settings_restore_afterwards: true,
  save_images: false,
  do_not_save_samples: true,
  do_not_save_grid: true,
} as const;

/**
 * Exceptions A1111 raises while reading a request's own fields (bad script arguments and the like):
 * the request's fault, so the job fails without counting against the backend.
 */
const REQUEST_ERRORS = new Set(["TypeError", "ValueError", "IndexError", "KeyError", "AttributeError", "AssertionError", "ValidationError", "RequestValidationError", "JSONDecodeError"]);

/**
 * A1111's `extra-single-image` body for an upscale: by `scale` (resize_mode 0) or to the exact
 * size (resize_mode 1, cropped to it). Other extras fields a dialect sent (face restoration...)
 * pass through.
 */
export function upscalePayload(spec: GenerationSpec, image: Uint8Array | undefined): Record<string, unknown> {
  const scale = spec.upscale?.scale;
  return {
    ...spec.a1111_extra,
    image: image ? new Base64Bytes(image) : "",
    resize_mode: scale !== undefined ? 0 : 1,
    upscaling_resize: scale ?? 1,
    upscaling_resize_w: spec.width,
    upscaling_resize_h: spec.height,
    upscaling_crop: true,
    // A1111's "None" would still resize, but with no upscaler at all; Lanczos is its plain one.
    upscaler_1: spec.upscale?.upscaler ?? "Lanczos",
  };
}

/** Where A1111 puts its images in an answer: the `images` list, or extra-single-image's one `image`. */
export const a1111ImagesAt = (upscale: boolean) => (upscale ? ["image"] : ["images"]);

/** Reads A1111's `{html_info, image}` answer to extra-single-image (its image stored as it was read); its error envelope is a failure. */
export function upscaleOutcome(answer: Pick<ImageAnswer, "json" | "images">): Outcome {
  const { json } = answer;
  if (json && typeof json.image === "string" && answer.images.length) return storedImages(answer.images, 1);
  return a1111Outcome({ json: json ? { ...json, images: [] } : undefined, images: [] }, 1);
}

/** The request a spec becomes at an A1111 (or RunPod's A1111 worker): its API call and body. */
export function a1111Call(spec: GenerationSpec, initImage: Uint8Array | undefined, model: string | undefined): { api: "txt2img" | "img2img" | "extra-single-image"; body: Record<string, unknown> } {
  if (spec.type === "upscale") return { api: "extra-single-image", body: upscalePayload(spec, initImage) };
  // A ComfyUI graph never comes here (only ComfyUI kinds serve `workflow`): run as txt2img it would fail as one.
  return { api: spec.type === "img2img" ? "img2img" : "txt2img", body: a1111Payload(spec, initImage, model) };
}

/**
 * Reads A1111's answer (its images stored as it was read). Failure comes in disguise: an error
 * envelope, a 200 without images, or the partial images an interrupted run returns; none of
 * those may become a success.
 */
export function a1111Outcome(answer: Pick<ImageAnswer, "json" | "images">, samples: number): Outcome {
  const { json } = answer;
  if (!json) return failed("backend_failed", "the backend answered with something that is not a JSON object", true);
  if (typeof json.error === "string" || (json.detail !== undefined && !Array.isArray(json.images))) {
    const text = [json.error, json.errors, json.detail].map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(": ");
    if (/out ?of ?memory/i.test(text)) return failed("out_of_memory", "the backend ran out of GPU memory", true, text);
    const lacking = lacks(json);
    if (lacking) return lacking;
    if (typeof json.error === "string" && REQUEST_ERRORS.has(json.error)) return failed("invalid_request", `the backend could not use the request's parameters (${json.error})`, false, text);
    // api.py's decode_base64_to_image: the request's image, which no other A1111 decodes either.
    if (/Invalid encoded image/i.test(text)) return failed("invalid_request", "the backend could not decode the request's image", false, text);
    return failed("backend_failed", "the backend reported an error", true, text);
  }
  const raw = Array.isArray(json.images) ? answer.images : [];
  // A1111's info says where the batch starts (after a grid, when it made one); what follows the
  // batch is not the job's (an extension's extra images: ControlNet's detected maps). An answer
  // whose info does not say has a grid first only with a batch.
  const first = firstImageIndex(json) ?? (raw.length === samples + 1 && samples > 1 ? 1 : 0);
  const list = raw.slice(first, first + samples);
  if (list.length === 0) return failed("backend_failed", "the backend answered without images", true);
  if (list.length < samples) return failed("interrupted", `the backend returned ${list.length} of ${samples} images`, true);
  return storedImages(list, samples);
}

/** `info.index_of_first_image`: 1 when A1111 put a grid before the batch; undefined when its info does not say. */
function firstImageIndex(json: Record<string, unknown>): number | undefined {
  const at = typeof json.info === "string" ? parseJsonObject(json.info)?.index_of_first_image : undefined;
  return typeof at === "number" && Number.isInteger(at) && at >= 0 ? at : undefined;
}

/**
 * An error envelope saying this A1111 lacks something the request names that another may have (an
 * upscaler, an always-on script such as ControlNet): the request is not at fault, so the job tries
 * the next backend, and this one is not counted as failing.
 */
function lacks(json: Record<string, unknown>): Outcome | undefined {
  const said = [json.errors, json.detail].filter((v): v is string => typeof v === "string").join("\n");
  // scripts_postprocessing_upscale's assert; api.py's init_script_args and get_script.
  const upscaler = /could not find upscaler named (.{1,200})/.exec(said)?.[1];
  if (upscaler) return failed("invalid_request", `the backend has no upscaler named ${upscaler.trim()}`, true, said);
  const script = /always on script (.{1,200}) not found|Script '(.{1,200})' not found/.exec(said);
  if (script) return failed("invalid_request", `the backend has no script named ${script[1] ?? script[2]}`, true, said);
  return undefined;
}

/**
 * A non-200 answer as its failure; undefined for a 5xx carrying A1111's error envelope, which
 * `a1111Outcome` reads (it tells an out-of-memory apart).
 */
export function a1111Refusal(status: number, answer: Pick<ImageAnswer, "json" | "head">): Outcome | undefined {
  if (status >= 500 && answer.json) return undefined;
  const lacking = answer.json ? lacks(answer.json) : undefined;
  if (lacking) return lacking;
  // A1111 answers a name it does not know (`validate_sampler_name`: "Sampler not found") with a 404
  // in its error envelope: the request's fault. A bare 404 ("Not Found") is a wrong URL, the backend's.
  const detail = answer.json?.detail;
  if (status === 404 && answer.json?.error === "HTTPException" && typeof detail === "string" && detail !== "Not Found") return failed("invalid_request", `the backend could not use the request's parameters (${detail})`, false);
  return statusFailure(status, answer.head);
}

export function a1111Models(list: unknown, backend: string): ModelInfo[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((m): ModelInfo[] => {
    if (!m || typeof m !== "object") return [];
    const r = m as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === "string" ? v : null);
    const title = str(r.title) ?? str(r.model_name);
    if (!title) return [];
    return [{ title, model_name: str(r.model_name) ?? title, hash: str(r.hash), sha256: str(r.sha256), filename: str(r.filename) ?? title, config: str(r.config), backend }];
  });
}

export class A1111Adapter implements BackendAdapter {
  constructor(readonly config: BackendConfig) {}

  private headers(): Record<string, string> {
    return a1111Headers(this.config);
  }

  async submit(req: GenerationRequest): Promise<Outcome> {
    const call = a1111Call(req.spec, req.initImage, await this.checkpoint(req.spec, req.signal));
    const upscale = call.api === "extra-single-image";
    // The task id lets a cancel tell this generation from a neighbour's; A1111's extras API has none.
    const payload: Record<string, unknown> = upscale ? call.body : { ...call.body, force_task_id: req.taskId };
    // A cut connection is resent only when A1111 has never heard of the task; an upscale cannot be asked about.
    const arrival = upscale ? async () => "unknown" as const : () => a1111Arrival(this.config, req.taskId, req.signal);
    const res = await callBackendForImages(
      `${this.config.url}/sdapi/v1/${call.api}`,
      { method: "POST", headers: this.headers(), body: jsonBody(payload) },
      { timeoutMs: this.config.timeout_s * 1000, signal: req.signal, imagesAt: a1111ImagesAt(upscale), store: req.images, onFinished: req.onFinished, arrival },
    );
    if (!res.ok) return res.outcome;
    const { answer } = res;
    const read = () => (upscale ? upscaleOutcome(answer) : a1111Outcome(answer, req.spec.samples));
    if (res.status !== 200) return a1111Refusal(res.status, answer) ?? read();
    return read();
  }

  /**
   * The job's model as this A1111 names it. A1111 drops an override it has no exact alias for (a
   * case apart, `.ckpt` for a `.safetensors`) and generates with whatever checkpoint is loaded,
   * reporting success: so a backend that lists no `models` is asked for its own list, and a model
   * it has goes by its own title. One it does not list (or cannot list) goes as asked: a backend
   * without `models` serves any model (contract §2), and it may have what it did not list.
   */
  private async checkpoint(spec: GenerationSpec, signal: AbortSignal): Promise<string | undefined> {
    if (!spec.model || spec.type === "upscale" || this.config.models) return backendModelName(this.config, spec.model);
    const key = modelKey(spec.model);
    return (await this.listModels(signal)).find((m) => modelKey(m.title) === key || modelKey(m.model_name) === key)?.title ?? spec.model;
  }

  async poll(): Promise<Outcome> {
    return failed("backend_failed", "A1111 answers synchronously; there is nothing to poll", false);
  }

  async callback(): Promise<Outcome | undefined> {
    return undefined;
  }

  /**
   * A1111's interrupt stops whatever it is generating, which on a shared backend may be a
   * neighbour's job: it is sent only when A1111 says this attempt's task is the active one. A task
   * still queued there, one about to end, or a backend that cannot tell, is left to finish; its
   * result is discarded.
   */
  async cancel(attempt: { taskId: string }, signal: AbortSignal): Promise<boolean> {
    const { state, now } = await stoppable(this.config, attempt.taskId, signal);
    // Taken: a task A1111 has ended or never got needs no stop.
    if (state === "completed" || state === "unknown") return true;
    // A task about to end is let finish: by the time the interrupt lands, it would stop the next one.
    if (!now) return false;
    const interrupt = await callBackend(this.config.url + "/sdapi/v1/interrupt", { method: "POST", headers: this.headers() }, 5000, signal);
    return interrupt.ok && interrupt.status === 200;
  }

  progress(req: ProgressRequest) {
    return readA1111Progress(this.config, req);
  }

  skip(attempt: { taskId: string }, signal: AbortSignal) {
    return skipA1111(this.config, attempt.taskId, signal);
  }

  async listModels(signal: AbortSignal): Promise<ModelInfo[]> {
    const res = await callBackend(this.config.url + "/sdapi/v1/sd-models", { headers: this.headers() }, 10_000, signal);
    if (!res.ok || res.status !== 200) return [];
    try {
      return a1111Models(JSON.parse(res.body), this.config.name);
    } catch {
      return [];
    }
  }
}

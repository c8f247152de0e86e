import type { BackendConfig } from "../config";
import type { GenerationSpec } from "../jobs/spec";
import { bytesToBase64 } from "../lib/base64";
import { basicAuth, callBackend, decodedImages, failed, parseJsonObject, statusFailure } from "./http";
import { backendModelName } from "./models";
import type { BackendAdapter, GenerationRequest, ModelInfo, Outcome } from "./types";

/**
 * The A1111 request body for a spec; RunPod's worker takes the same payload inside `input`.
 * `model` is the checkpoint as this backend names it.
 */
export function a1111Payload(spec: GenerationSpec, initImage?: Uint8Array, model = spec.model): Record<string, unknown> {
  const extra = spec.a1111_extra ?? {};
  const override = { ...(extra.override_settings as Record<string, unknown> | undefined) };
  if (model) override.sd_model_checkpoint = model;
  return {
    ...extra,
    prompt: spec.prompt,
    negative_prompt: spec.negative_prompt,
    seed: spec.seed,
    steps: spec.steps,
    cfg_scale: spec.guidance_scale,
    width: spec.width,
    height: spec.height,
    batch_size: spec.samples,
    n_iter: 1,
    ...(spec.sampler ? { sampler_name: spec.sampler } : {}),
    ...(Object.keys(override).length ? { override_settings: override } : {}),
    ...(spec.type === "img2img" && initImage ? { init_images: [bytesToBase64(initImage)], denoising_strength: spec.strength } : {}),
  };
}

/**
 * Reads A1111's answer. Failure comes in disguise: an error envelope, a 200 without images, or
 * the partial images an interrupted run returns; none of those may become a success.
 */
export function a1111Outcome(json: Record<string, unknown> | undefined, samples: number): Outcome {
  if (!json) return failed("backend_failed", "backend answered with something that is not a JSON object", true);
  if (typeof json.error === "string" || (json.detail !== undefined && !Array.isArray(json.images))) {
    const text = [json.error, json.errors, json.detail].filter((v) => typeof v === "string").join(": ");
    if (/out ?of ?memory/i.test(text)) return failed("out_of_memory", text.slice(0, 500), true);
    return failed("backend_failed", text.slice(0, 500) || "backend reported an error", true);
  }
  const raw = Array.isArray(json.images) ? json.images.filter((v): v is string => typeof v === "string") : [];
  // With a batch, A1111 puts a grid of all images first.
  const list = raw.length === samples + 1 && samples > 1 ? raw.slice(1) : raw;
  if (list.length === 0) return failed("backend_failed", "backend answered without images", true);
  if (list.length < samples) return failed("interrupted", `backend returned ${list.length} of ${samples} images`, true);
  return decodedImages(list, samples);
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
    const h: Record<string, string> = { "content-type": "application/json" };
    if (this.config.username !== undefined || this.config.password !== undefined) {
      h.authorization = basicAuth(this.config.username ?? "", this.config.password ?? "");
    } else if (this.config.api_key) {
      h.authorization = `Bearer ${this.config.api_key}`;
    }
    return h;
  }

  async submit(req: GenerationRequest): Promise<Outcome> {
    const path = req.spec.type === "img2img" ? "/sdapi/v1/img2img" : "/sdapi/v1/txt2img";
    const res = await callBackend(
      this.config.url + path,
      { method: "POST", headers: this.headers(), body: JSON.stringify(a1111Payload(req.spec, req.initImage, backendModelName(this.config, req.spec.model))) },
      this.config.timeout_s * 1000,
      req.signal,
    );
    if (!res.ok) return res.outcome;
    const json = parseJsonObject(res.body);
    if (res.status !== 200) {
      // A1111's 500 carries its error envelope, which tells an out-of-memory apart.
      return res.status >= 500 && json ? a1111Outcome(json, req.spec.samples) : statusFailure(res.status, res.body);
    }
    return a1111Outcome(json, req.spec.samples);
  }

  async poll(): Promise<Outcome> {
    return failed("backend_failed", "A1111 answers synchronously; there is nothing to poll", false);
  }

  async callback(): Promise<Outcome | undefined> {
    return undefined;
  }

  async cancel(_externalId: string | undefined, signal: AbortSignal): Promise<void> {
    await callBackend(this.config.url + "/sdapi/v1/interrupt", { method: "POST", headers: this.headers() }, 5000, signal);
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

/**
 * The soak's jobs (bench/soak.ts): which kinds and models, in what rotation, and the request each
 * client sends, `/v1` or a dialect's, as that API's users send it.
 */
import { encodePng } from "../gpu-simulator/png";

export const V15 = "v1-5-pruned-emaonly";
export const CHILL = "chilloutmix-Ni";
const initB64 = Buffer.from(encodePng(64, 64, (x, y) => [x * 4, y * 4, 128])).toString("base64");

type Kind = "v1-txt2img" | "v1-img2img" | "v1-workflow" | "modelslab" | "runpod" | "cerebrium" | "eks" | WideKind;
/** With `--fronts all`: a pinned /v1 job, RunPod's `/runsync`, a Replicate prediction with `Prefer: wait`, ComfyUI's `/prompt`. */
type WideKind = "v1-pinned" | "runpod-sync" | "replicate" | "comfy-front";
const KINDS: Kind[] = ["v1-txt2img", "v1-img2img", "v1-txt2img", "v1-img2img", "v1-workflow", "modelslab", "runpod", "cerebrium", "eks"];
const WIDE_KINDS: Kind[] = [...KINDS, "v1-pinned", "runpod-sync", "replicate", "comfy-front"];
/** The backends serving V15 in turn for pinned jobs, which cannot fail over. */
const PINS = ["a1111-main", "runpod", "comfyui"] as const;
/** The Replicate model name the soak's gateway maps to V15 (its `ENDPOINTS`). */
export const REPLICATE_MODEL = "stability-ai/sdxl";
/** Each tenant's ComfyUI `client_id`, the one its socket listens with. */
export const comfyClientId = (tenant: 0 | 1) => `soak-client-${tenant}`;

export interface Planned {
  tag: string;
  /** Index into the soak's two tenants. */
  tenant: 0 | 1;
  kind: Kind;
  model: string | undefined;
  img2img: boolean;
  /** A pinned /v1 job's backend. */
  pin?: (typeof PINS)[number];
}
export interface Accepted extends Planned {
  runId: string;
  submittedAt: number;
  acceptedAt: number;
}

/** Kinds and models in rotation, so every combination is present; tenants take turns. `wide`: the more fronts of `--fronts all`. */
export function planJobs(n: number, wide = false): Planned[] {
  const kinds = wide ? WIDE_KINDS : KINDS;
  return Array.from({ length: n }, (_, i) => {
    const kind = kinds[i % kinds.length] as Kind;
    const turn = Math.floor(i / kinds.length);
    const img2img = kind === "v1-img2img" || kind === "cerebrium" || ((kind === "modelslab" || kind === "runpod" || kind === "eks") && turn % 2 === 1);
    const model = kind === "cerebrium" ? undefined : kind === "v1-workflow" || kind === "v1-pinned" || kind === "replicate" || kind === "comfy-front" ? V15 : Math.floor(i / 3) % 2 ? CHILL : V15;
    const pin = kind === "v1-pinned" ? PINS[turn % PINS.length] : undefined;
    return { tag: `s${i}`, tenant: (Math.floor(i / (2 * kinds.length)) % 2) as 0 | 1, kind, model, img2img, ...(pin ? { pin } : {}) };
  });
}

/** A /v1 workflow job's graph: the example's, small and quick, its prompt carrying the job's tag. */
function workflowOf(prompt: string, model: string): Record<string, { class_type: string; inputs: Record<string, unknown> }> {
  return {
    "3": { class_type: "KSampler", inputs: { seed: 7, steps: 2, cfg: 7, sampler_name: "euler", scheduler: "normal", denoise: 1, model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] } },
    "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: `${model}.safetensors` } },
    "5": { class_type: "EmptyLatentImage", inputs: { width: 64, height: 64, batch_size: 1 } },
    "6": { class_type: "CLIPTextEncode", inputs: { text: prompt, clip: ["4", 1] } },
    "7": { class_type: "CLIPTextEncode", inputs: { text: "blurry", clip: ["4", 1] } },
    "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    "9": { class_type: "SaveImage", inputs: { filename_prefix: "soak", images: ["8", 0] } },
  };
}

/** A /v1 job's body. */
export function v1Body(p: Planned, prompt: string, hook: string): Record<string, unknown> {
  const common = {
    webhook: hook,
    // Half also ask for job.started, which must never hold the outcome back.
    webhook_events: Number(p.tag.slice(1)) % 2 ? ["job.started", "job.succeeded", "job.failed", "job.canceled"] : undefined,
    track_id: p.tag,
  };
  if (p.kind === "v1-workflow") return { type: "workflow", workflow: workflowOf(prompt, p.model ?? V15), ...common };
  return {
    type: p.img2img ? "img2img" : "txt2img",
    prompt,
    width: 64,
    height: 64,
    steps: 2,
    model: p.model,
    ...common,
    ...(p.img2img ? { init_image: initB64 } : {}),
    ...(p.pin ? { backend: p.pin } : {}),
  };
}

/** A dialect job's request, as that API's clients send it; `runTag` keeps SD-on-EKS task ids apart between runs. */
export function dialectRequest(p: Planned, prompt: string, who: { key: string; hook: string; runTag: string }): [string, RequestInit] {
  const json = (path: string, body: unknown, headers: Record<string, string> = {}): [string, RequestInit] => [path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) }];
  switch (p.kind) {
    case "modelslab":
      return json(p.img2img ? "/api/v3/img2img" : "/api/v3/text2img", {
        key: who.key,
        prompt,
        width: "64",
        height: "64",
        samples: "1",
        num_inference_steps: "2",
        model_id: p.model,
        webhook: who.hook,
        track_id: p.tag,
        ...(p.img2img ? { init_image: `data:image/png;base64,${initB64}`, strength: 0.7 } : {}),
      });
    case "runpod":
    case "runpod-sync":
      return json(
        p.kind === "runpod" ? "/runpod/run" : "/runpod/runsync",
        {
          input: { api_name: p.img2img ? "img2img" : "txt2img", prompt, width: 64, height: 64, steps: 2, override_settings: { sd_model_checkpoint: p.model }, ...(p.img2img ? { init_images: [initB64] } : {}) },
          webhook: who.hook,
        },
        { authorization: `Bearer ${who.key}` },
      );
    case "replicate":
      // Held open until the prediction ends (or Replicate's 60 s), its webhook only for the end.
      return json(`/v1/models/${REPLICATE_MODEL}/predictions`, { input: { prompt, width: 64, height: 64, num_inference_steps: 2 }, webhook: who.hook, webhook_events_filter: ["completed"] }, { authorization: `Bearer ${who.key}`, prefer: "wait" });
    case "comfy-front":
      return json("/prompt", { prompt: workflowOf(prompt, V15), client_id: comfyClientId(p.tenant), extra_data: { webhook: who.hook } }, { authorization: `Bearer ${who.key}` });
    case "cerebrium":
      return json("/cerebrium/predict", { prompt, image: initB64, num_inference_steps: 2, webhook_endpoint: who.hook }, { authorization: who.key });
    case "eks":
      return json(
        "/eks/v1/tasks",
        {
          task: {
            metadata: { id: `soak-${p.tag}-${who.runTag}`, runtime: "sdruntime", tasktype: p.img2img ? "image-to-image" : "text-to-image", prefix: "soak", context: { tag: p.tag }, webhook: who.hook },
            content: { prompt, steps: 2, width: 64, height: 64, alwayson_scripts: { sd_model_checkpoint: p.model }, ...(p.img2img ? { init_images: [initB64] } : {}) },
          },
        },
        { "x-api-key": who.key },
      );
    default:
      throw new Error(`no dialect request for ${p.kind}`);
  }
}

/**
 * When job i is sent, in ms after the start: `rate` a second, but for `burst` jobs sent together
 * within one second at 60% of the window (the steady rate goes on after it). Without a burst, i/rate.
 */
export function schedule(jobs: number, rate: number, burst: number): { dueMs: (i: number) => number; windowMs: number } {
  const steady = jobs - burst;
  const from = Math.floor(steady * 0.6);
  const dueMs = (i: number): number => {
    if (i < from) return (i * 1000) / rate;
    if (i < from + burst) return (from * 1000) / rate + ((i - from) * 1000) / burst;
    return ((i - burst) * 1000) / rate + (burst ? 1000 : 0);
  };
  return { dueMs, windowMs: (steady / rate) * 1000 + (burst ? 1000 : 0) };
}

/** A Replicate prediction request (the inputs of image models such as SDXL and FLUX) onto the canonical job. */
import { z } from "@hono/zod-openapi";
import { invalid } from "../../errors";
import type { IntakeOptions, IntakeRequest } from "../../jobs/intake";
import type { WebhookEventType } from "../../schemas/job";

/** Diffusers scheduler names (Replicate's SDXL) → the gateway's sampler names (A1111's). */
export const SCHEDULERS = {
  DDIM: "DDIM",
  DPMSolverMultistep: "DPM++ 2M",
  HeunDiscrete: "Heun",
  KarrasDPM: "DPM++ 2M Karras",
  K_EULER_ANCESTRAL: "Euler a",
  K_EULER: "Euler",
  PNDM: "PLMS",
  LMSDiscrete: "LMS",
} as const;
const SCHEDULER_NAMES = Object.keys(SCHEDULERS) as [keyof typeof SCHEDULERS, ...(keyof typeof SCHEDULERS)[]];

/** FLUX's aspect ratios; `custom` means width and height as given. */
export const ASPECT_RATIOS = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21", "custom"] as const;

/** The inputs read; unknown ones are ignored, as Replicate's models ignore them. */
export const ReplicateInputSchema = z
  .looseObject({
    prompt: z.string().optional(),
    negative_prompt: z.string().optional(),
    image: z.string().min(1).optional(),
    prompt_strength: z.number().min(0).max(1).optional(),
    num_outputs: z.number().int().min(1).max(4).optional(),
    num_inference_steps: z.number().int().optional(),
    guidance_scale: z.number().optional(),
    // Null or negative: a random seed, as Replicate's models take it.
    seed: z.number().int().nullable().optional(),
    width: z.number().int().optional(),
    height: z.number().int().optional(),
    scheduler: z.enum(SCHEDULER_NAMES).optional(),
    aspect_ratio: z.enum(ASPECT_RATIOS).optional(),
    // FLUX's approximate size of an aspect_ratio image.
    megapixels: z.enum(["1", "0.25"]).optional(),
    output_format: z.enum(["webp", "jpg", "png"]).optional(),
    // A ComfyUI API-format graph (as fofr/any-comfyui-workflow takes it): JSON text or the object itself.
    workflow_json: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).optional(),
  })
  .openapi("ReplicateInput");
export type ReplicateInput = z.infer<typeof ReplicateInputSchema>;

export const WEBHOOK_EVENTS = ["start", "output", "logs", "completed"] as const;
export type ReplicateWebhookEvent = (typeof WEBHOOK_EVENTS)[number];

const body = {
  input: ReplicateInputSchema.default({}),
  webhook: z.string().min(1).max(2048).optional(),
  webhook_events_filter: z.array(z.enum(WEBHOOK_EVENTS)).optional(),
  stream: z.boolean().optional(),
};
/** `POST /v1/models/{owner}/{name}/predictions` and the deployments' form. */
export const ModelPredictionRequestSchema = z.looseObject(body).openapi("ReplicateModelPrediction");
/** `POST /v1/predictions`: `version` is `owner/name:id`, a bare version id, or `owner/name`. */
export const PredictionRequestSchema = z.looseObject({ version: z.string().min(1).max(300), ...body }).openapi("ReplicatePrediction");
export type ModelPredictionRequest = z.infer<typeof ModelPredictionRequestSchema>;

/** Width and height at about `megapixels` (one by default) for `w:h`, each a multiple of 8. */
export function aspectSize(ratio: string, megapixels = 1): { width: number; height: number } | undefined {
  const [w, h] = ratio.split(":").map(Number);
  if (!w || !h) return undefined;
  const width = Math.sqrt((megapixels * 1024 * 1024 * w) / h);
  const round8 = (n: number) => Math.max(64, Math.round(n / 8) * 8);
  return { width: round8(width), height: round8((width * h) / w) };
}

/**
 * The canonical request of a prediction; `image` (as bytes when a dialect file) makes it img2img,
 * `workflow_json` a workflow job.
 * Explicit `width`/`height` win over `aspect_ratio` and `megapixels`.
 */
export function fromReplicate(input: ReplicateInput, image: string | Uint8Array | undefined): IntakeRequest {
  // A graph carries its own prompt, sizes and seeds: the other inputs are not read (the core checks the graph).
  if (input.workflow_json !== undefined) return { type: "workflow", workflow: workflowGraph(input.workflow_json) };
  const size = input.aspect_ratio || input.megapixels ? aspectSize(input.aspect_ratio ?? "1:1", Number(input.megapixels ?? 1)) : undefined;
  return {
    type: image === undefined ? "txt2img" : "img2img",
    prompt: input.prompt,
    negative_prompt: input.negative_prompt,
    init_image: image,
    strength: input.prompt_strength,
    samples: input.num_outputs,
    steps: input.num_inference_steps,
    guidance_scale: input.guidance_scale,
    seed: input.seed === null || input.seed === undefined || input.seed < 0 ? undefined : input.seed,
    width: input.width ?? size?.width,
    height: input.height ?? size?.height,
    sampler: input.scheduler ? SCHEDULERS[input.scheduler] : undefined,
  };
}

function workflowGraph(value: string | Record<string, unknown>): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw invalid("input.workflow_json", "not valid JSON (a ComfyUI graph saved with Save (API Format))");
  }
}

/** How the core's field names read in this dialect's errors. */
export const replicateFields: IntakeOptions["fields"] = {
  prompt: "input.prompt",
  negative_prompt: "input.negative_prompt",
  init_image: "input.image",
  strength: "input.prompt_strength",
  samples: "input.num_outputs",
  steps: "input.num_inference_steps",
  guidance_scale: "input.guidance_scale",
  seed: "input.seed",
  width: "input.width",
  height: "input.height",
  webhook: "webhook",
  workflow: "input.workflow_json",
};

/** Which job events a filter asks for; by default `output` and `completed`, as Replicate sends. */
export function webhookEvents(filter: readonly ReplicateWebhookEvent[] = ["output", "completed"]): WebhookEventType[] {
  const events = new Set<WebhookEventType>();
  // Outputs arrive with the end of the job (the backends hand them over together), so `output` is its success;
  // a prediction's `logs` is its live progress line, so `logs` is each change of it.
  if (filter.includes("start")) events.add("job.started");
  if (filter.includes("logs")) events.add("job.progress");
  if (filter.includes("output")) events.add("job.succeeded");
  if (filter.includes("completed")) for (const e of ["job.succeeded", "job.failed", "job.canceled"] as const) events.add(e);
  return [...events];
}

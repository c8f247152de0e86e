/** The RunPod serverless API of seed 000's A1111 worker, to and from the canonical job. */
import { z } from "@hono/zod-openapi";
import type { EaselError } from "../../errors";
import { invalid } from "../../errors";
import type { IntakeOptions, IntakeRequest } from "../../jobs/intake";
import type { Job, JobSnapshot } from "../../jobs/results";
import { MAX_TIMEOUT_S, MIN_TIMEOUT_S } from "../../schemas/job";
import { ExtrasSingleImageSchema, extrasFields, fromExtras, toExtrasResponse } from "../a1111/extras";
import { A1111OptionsSchema } from "../a1111/settings";
import { A1111RequestSchema, a1111Fields, a1111Parameters, fromA1111, toA1111Response } from "../a1111/translate";
import type { ImagesAsBase64 } from "../outputs";

/** `input.api_name` picks the worker's call; the rest of `input` is that call's A1111 payload. */
const InputSchema = z.discriminatedUnion("api_name", [
  A1111RequestSchema.extend({ api_name: z.enum(["txt2img", "img2img"]) }),
  ExtrasSingleImageSchema.extend({ api_name: z.literal("extra-single-image") }),
  A1111OptionsSchema.extend({ api_name: z.literal("setOptions") }),
  z.looseObject({ api_name: z.enum(["getModels", "getOptions"]) }),
]);

/** RunPod's execution policy, in milliseconds as RunPod takes it; a field sent as null (Python's None) is as if left out. */
const PolicySchema = z.looseObject({
  executionTimeout: z.number().int().positive().nullish(),
  ttl: z.number().int().positive().nullish(),
  lowPriority: z.boolean().nullish(),
});

// `webhook` and `policy` sent as null (Python's None) are as if left out.
export const RunPodRequestSchema = z.object({ input: InputSchema, webhook: z.string().nullish(), policy: PolicySchema.nullish() }).openapi("RunPodRequest");
export type RunPodRequest = z.infer<typeof RunPodRequestSchema>;
export type GenerationInput = Extract<RunPodRequest["input"], { api_name: "txt2img" | "img2img" }>;
export type UpscaleInput = Extract<RunPodRequest["input"], { api_name: "extra-single-image" }>;
export type SettingsInput = Exclude<RunPodRequest["input"], GenerationInput | UpscaleInput>;

export const isGeneration = (input: RunPodRequest["input"]): input is GenerationInput => input.api_name === "txt2img" || input.api_name === "img2img";
export const isUpscale = (input: RunPodRequest["input"]): input is UpscaleInput => input.api_name === "extra-single-image";

/** RunPod's own bounds on each policy field, in ms (its docs: executionTimeout 5 s–7 days, ttl 10 s–7 days). */
const RUNPOD_BOUNDS_MS = { executionTimeout: { min: 5_000, max: 7 * 86_400_000 }, ttl: { min: 10_000, max: 7 * 86_400_000 } } as const;

/** A policy field in whole seconds; outside RunPod's own bounds it is a 422, as RunPod refuses it. */
const seconds = (field: keyof typeof RUNPOD_BOUNDS_MS, ms: number): number => {
  const { min, max } = RUNPOD_BOUNDS_MS[field];
  if (ms < min || ms > max) throw invalid(`policy.${field}`, `RunPod takes ${min}–${max} ms`);
  return Math.ceil(ms / 1000);
};

/**
 * RunPod's policy as the job's time limits: `ttl` (the job's whole life, from submission) becomes
 * `timeout_s`, `executionTimeout` (running only, from the start) the run limit. What RunPod takes
 * is clamped to what the gateway keeps (a job lives at most MAX_TIMEOUT_S, at least
 * MIN_TIMEOUT_S), never refused; the core enforces both limits.
 */
export function policyLimits(policy: RunPodRequest["policy"]): { timeout_s: number | undefined; run_timeout_s: number | undefined } {
  // Without a ttl the job has the gateway's default life, as a /v1 job without timeout_s does.
  const ttl = policy?.ttl == null ? undefined : seconds("ttl", policy.ttl);
  const run = policy?.executionTimeout == null ? undefined : seconds("executionTimeout", policy.executionTimeout);
  return { timeout_s: ttl === undefined ? undefined : Math.min(MAX_TIMEOUT_S, Math.max(MIN_TIMEOUT_S, ttl)), run_timeout_s: run === undefined ? undefined : Math.min(MAX_TIMEOUT_S, run) };
}

export function fromRunPod(input: GenerationInput, webhook: string | null | undefined, model: string | undefined): IntakeRequest {
  const { api_name, ...payload } = input;
  return { ...fromA1111(api_name, payload, model, "input."), webhook: webhook ?? undefined };
}

/** `api_name: "extra-single-image"`: the worker's upscaler, a canonical upscale job. */
export function fromRunPodUpscale(input: UpscaleInput, webhook: string | null | undefined): IntakeRequest {
  const { api_name: _call, ...payload } = input;
  return { ...fromExtras(payload), webhook: webhook ?? undefined };
}

export const runPodFields = (input: GenerationInput | UpscaleInput): IntakeOptions["fields"] => (isUpscale(input) ? extrasFields("input.") : a1111Fields("input.", input));

/**
 * The image payloads the kept input leaves out: a job's stored input is a Durable Object row, and
 * so is its webhook body, while these can be megabytes (the init image is in R2 already).
 */
const IMAGE_FIELDS = new Set(["init_images", "mask", "image"]);

/** The request's `input` as it was sent (api_name and unknown fields included), its image payloads left out. */
export function echoedInput(body: unknown): Record<string, unknown> {
  const input = body !== null && typeof body === "object" && "input" in body ? body.input : undefined;
  if (input === null || typeof input !== "object" || Array.isArray(input)) return {};
  return Object.fromEntries(Object.entries(input).filter(([name]) => !IMAGE_FIELDS.has(name)));
}

/** Kept with the job: the request as the A1111 response and the webhook echo it, and the endpoint it came to. */
export const runPodData = (input: GenerationInput | UpscaleInput, endpoint: string, echoed: Record<string, unknown>) => {
  if (isUpscale(input)) return { endpoint, input: echoed };
  const { api_name, ...payload } = input;
  return { endpoint, parameters: a1111Parameters(api_name, payload), input: echoed };
};

export type RunPodStatus = "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT";
const STATUS = { queued: "IN_QUEUE", running: "IN_PROGRESS", succeeded: "COMPLETED", failed: "FAILED", canceled: "CANCELLED" } as const;
/** A job that ran out of its time is RunPod's `TIMED_OUT`; any other failure `FAILED`. */
export const runPodStatus = (job: Job): RunPodStatus => (job.status === "failed" && job.error?.code === "timeout" ? "TIMED_OUT" : STATUS[job.status]);
export const isFinal = (status: RunPodStatus): boolean => status !== "IN_QUEUE" && status !== "IN_PROGRESS";

/** The worker's answer: A1111's txt2img/img2img response, or its extras response for an upscale. */
async function workerOutput(snapshot: JobSnapshot, images: ImagesAsBase64): Promise<unknown> {
  if (snapshot.input.spec.type === "upscale") return toExtrasResponse(snapshot, await images(snapshot));
  return toA1111Response(snapshot, await images(snapshot), snapshot.input.dialect_data.parameters ?? {});
}

/** RunPod's status object, also the webhook body; `output` is the worker's answer. */
export async function toRunPodStatus(snapshot: JobSnapshot, images: ImagesAsBase64, nowMs = Date.now()): Promise<Record<string, unknown>> {
  const { job } = snapshot;
  const status = runPodStatus(job);
  const body: Record<string, unknown> = { id: job.id, status };
  body.delayTime = job.started_at || job.completed_at ? job.metrics.queue_ms : nowMs - Date.parse(job.created_at);
  if (job.started_at) body.executionTime = job.metrics.run_ms;
  if (job.status === "succeeded") body.output = await workerOutput(snapshot, images);
  if (job.status === "failed") body.error = job.error?.message ?? "job failed";
  return body;
}

/**
 * RunPod's webhook body: the status object with the request's `input` (see echoedInput) and its
 * `webhook`, as RunPod's cloud posts them; a client matches the call to its own order by `input`.
 */
export async function toRunPodWebhook(snapshot: JobSnapshot, images: ImagesAsBase64, nowMs: number): Promise<Record<string, unknown>> {
  // A job kept from before its input was stored has none to echo (undefined is left out of the body).
  return { ...(await toRunPodStatus(snapshot, images, nowMs)), input: snapshot.input.dialect_data.input, webhook: snapshot.input.webhook };
}

/** `/stream/{id}`: the worker is no generator, so its one output arrives with the end of the job. */
/** `withOutput`: this read takes the worker's output, one stream item; later reads find the stream empty. */
export async function toRunPodStream(snapshot: JobSnapshot, withOutput: boolean, images: ImagesAsBase64): Promise<Record<string, unknown>> {
  const { job } = snapshot;
  const status = runPodStatus(job);
  const stream = withOutput ? [{ output: await workerOutput(snapshot, images) }] : [];
  return { status, stream, ...(job.status === "failed" ? { error: job.error?.message ?? "job failed" } : {}) };
}

/** A call the worker answers at once (getModels...): a COMPLETED job with that output. */
export const instantResult = (id: string, output: unknown) => ({ id, status: "COMPLETED", delayTime: 0, executionTime: 0, output });

export const runpodError = (err: EaselError) => ({ error: err.message, ...(err.details ? { details: err.details } : {}) });

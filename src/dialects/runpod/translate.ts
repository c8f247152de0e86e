/** The RunPod serverless API of seed 000's A1111 worker, to and from the canonical job. */
import { z } from "@hono/zod-openapi";
import type { EaselError } from "../../errors";
import { invalid } from "../../errors";
import type { IntakeOptions, IntakeRequest } from "../../jobs/intake";
import type { Job, JobSnapshot } from "../../jobs/results";
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

/** RunPod's execution policy, in milliseconds as RunPod takes it. */
const PolicySchema = z.looseObject({
  executionTimeout: z.number().int().positive().optional(),
  ttl: z.number().int().positive().optional(),
  lowPriority: z.boolean().optional(),
});

export const RunPodRequestSchema = z.object({ input: InputSchema, webhook: z.string().optional(), policy: PolicySchema.optional() }).openapi("RunPodRequest");
export type RunPodRequest = z.infer<typeof RunPodRequestSchema>;
export type GenerationInput = Extract<RunPodRequest["input"], { api_name: "txt2img" | "img2img" }>;
export type UpscaleInput = Extract<RunPodRequest["input"], { api_name: "extra-single-image" }>;
export type SettingsInput = Exclude<RunPodRequest["input"], GenerationInput | UpscaleInput>;

export const isGeneration = (input: RunPodRequest["input"]): input is GenerationInput => input.api_name === "txt2img" || input.api_name === "img2img";
export const isUpscale = (input: RunPodRequest["input"]): input is UpscaleInput => input.api_name === "extra-single-image";

/** The gateway's own bounds on `timeout_s`, which `policy.executionTimeout` becomes. */
const TIMEOUT_S = { min: 10, max: 3600 } as const;

/**
 * `policy.executionTimeout` as the job's `timeout_s`. RunPod counts it from the start of execution,
 * the gateway from submission (queue time included): a limit, never more time than asked.
 */
export function policyTimeout(policy: RunPodRequest["policy"]): number | undefined {
  const ms = policy?.executionTimeout;
  if (ms === undefined) return undefined;
  const s = Math.ceil(ms / 1000);
  if (s < TIMEOUT_S.min || s > TIMEOUT_S.max) throw invalid("policy.executionTimeout", `this gateway takes ${TIMEOUT_S.min * 1000}–${TIMEOUT_S.max * 1000} ms`);
  return s;
}

export function fromRunPod(input: GenerationInput, webhook: string | undefined, model: string | undefined): IntakeRequest {
  const { api_name, ...payload } = input;
  return { ...fromA1111(api_name, payload, model), webhook };
}

/** `api_name: "extra-single-image"`: the worker's upscaler, a canonical upscale job. */
export function fromRunPodUpscale(input: UpscaleInput, webhook: string | undefined): IntakeRequest {
  const { api_name: _call, ...payload } = input;
  return { ...fromExtras(payload), webhook };
}

export const runPodFields = (input: GenerationInput | UpscaleInput): IntakeOptions["fields"] => (isUpscale(input) ? extrasFields("input.") : a1111Fields("input."));

/** Kept with the job: the request as the A1111 response echoes it, and the endpoint it came to. */
export const runPodData = (input: GenerationInput | UpscaleInput, endpoint: string) => {
  if (isUpscale(input)) return { endpoint };
  const { api_name, ...payload } = input;
  return { endpoint, parameters: a1111Parameters(api_name, payload) };
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

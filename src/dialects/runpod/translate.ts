/** The RunPod serverless API of seed 000's A1111 worker, to and from the canonical job. */
import { z } from "@hono/zod-openapi";
import type { EaselError } from "../../errors";
import type { IntakeRequest } from "../../jobs/intake";
import type { Job, JobSnapshot } from "../../jobs/results";
import { A1111OptionsSchema } from "../a1111/settings";
import { A1111RequestSchema, a1111Parameters, fromA1111, toA1111Response } from "../a1111/translate";
import type { ImagesAsBase64 } from "../outputs";

/** `input.api_name` picks the worker's call; the rest of `input` is that call's A1111 payload. */
const InputSchema = z.discriminatedUnion("api_name", [
  A1111RequestSchema.extend({ api_name: z.enum(["txt2img", "img2img"]) }),
  A1111OptionsSchema.extend({ api_name: z.literal("setOptions") }),
  z.looseObject({ api_name: z.enum(["getModels", "getOptions"]) }),
]);

export const RunPodRequestSchema = z.object({ input: InputSchema, webhook: z.string().optional() }).openapi("RunPodRequest");
export type RunPodRequest = z.infer<typeof RunPodRequestSchema>;
export type GenerationInput = Extract<RunPodRequest["input"], { api_name: "txt2img" | "img2img" }>;
export type SettingsInput = Exclude<RunPodRequest["input"], GenerationInput>;

export const isGeneration = (input: RunPodRequest["input"]): input is GenerationInput => input.api_name === "txt2img" || input.api_name === "img2img";

export function fromRunPod(input: GenerationInput, webhook: string | undefined, model: string | undefined): IntakeRequest {
  const { api_name, ...payload } = input;
  return { ...fromA1111(api_name, payload, model), webhook };
}

/** Kept with the job: the request as the A1111 response echoes it. */
export const runPodData = ({ api_name, ...payload }: GenerationInput) => ({ parameters: a1111Parameters(api_name, payload) });

const STATUS = { queued: "IN_QUEUE", running: "IN_PROGRESS", succeeded: "COMPLETED", failed: "FAILED", canceled: "CANCELLED" } as const;
export const runPodStatus = (job: Job) => STATUS[job.status];

/** RunPod's status object, also the webhook body; `output` is the A1111 response, as the worker returns it. */
export async function toRunPodStatus(snapshot: JobSnapshot, images: ImagesAsBase64, nowMs = Date.now()): Promise<Record<string, unknown>> {
  const { job } = snapshot;
  const body: Record<string, unknown> = { id: job.id, status: STATUS[job.status] };
  body.delayTime = job.started_at || job.completed_at ? job.metrics.queue_ms : nowMs - Date.parse(job.created_at);
  if (job.started_at) body.executionTime = job.metrics.run_ms;
  if (job.status === "succeeded") body.output = toA1111Response(snapshot, await images(snapshot), snapshot.input.dialect_data.parameters ?? {});
  if (job.status === "failed") body.error = job.error?.message ?? "job failed";
  return body;
}

/** A call the worker answers at once (getModels...): a COMPLETED job with that output. */
export const instantResult = (output: unknown) => ({ id: crypto.randomUUID(), status: "COMPLETED", delayTime: 0, executionTime: 0, output });

export const runpodError = (err: EaselError) => ({ error: err.message, ...(err.details ? { details: err.details } : {}) });

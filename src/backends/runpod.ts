import type { BackendConfig } from "../config";
import { jsonBody } from "../lib/json-slots";
import { a1111Call, a1111ImagesAt, a1111Models, a1111Outcome, upscaleOutcome } from "./a1111";
import { callBackend, callBackendForImages, failed, parseJsonObject, readImageAnswer, statusFailure, type HttpResult, type ImageAnswer } from "./http";
import { backendModelName } from "./models";
import { readRunPodProgress } from "./runpod-progress";
import type { BackendAdapter, CallbackOutcome, CallbackSource, GenerationRequest, ImageStore, ModelInfo, Outcome, ProgressRequest } from "./types";

/** Where a status object (and a webhook body) carries the worker's images: in `output`, as A1111 answered. */
export const runpodImagesAt = (upscale: boolean) => ["output", ...a1111ImagesAt(upscale)];

const FIRST_POLL_MS = 2_000;

const cannotAsk = async () => "unknown" as const;

/** Reads a RunPod `error`, which is sometimes a JSON string of an object. */
function errorText(error: unknown): string {
  if (typeof error !== "string") return JSON.stringify(error ?? "job failed");
  try {
    const inner: unknown = JSON.parse(error);
    if (inner && typeof inner === "object") {
      const o = inner as Record<string, unknown>;
      return String(o.error_message ?? o.message ?? o.error ?? error);
    }
  } catch {
    // A plain string.
  }
  return error;
}

/**
 * A RunPod status object (`/status` answer and webhook body, its images stored as it was read) as
 * an outcome. COMPLETED is not success by itself: the worker's `output` may be A1111's error envelope.
 */
export function runpodOutcome(answer: Pick<ImageAnswer, "json" | "images">, samples: number, upscale = false): Outcome {
  const status = answer.json;
  if (!status || typeof status.status !== "string") return failed("backend_failed", "RunPod answered without a job status", true);
  switch (status.status) {
    case "IN_QUEUE":
    case "IN_PROGRESS":
      return { kind: "pending", externalId: String(status.id ?? ""), pollAfterMs: FIRST_POLL_MS };
    case "COMPLETED": {
      const output = status.output && typeof status.output === "object" && !Array.isArray(status.output) ? (status.output as Record<string, unknown>) : undefined;
      const inner = { json: output, images: answer.images };
      return upscale ? upscaleOutcome(inner) : a1111Outcome(inner, samples);
    }
    case "FAILED": {
      // The RunPod SDK fails a job whose output has an `error` key: the detail stays in output.errors.
      const output = status.output && typeof status.output === "object" ? (status.output as Record<string, unknown>) : {};
      const text = [errorText(status.error), typeof output.errors === "string" ? output.errors : ""].filter(Boolean).join(": ");
      return /out ?of ?memory/i.test(text) ? failed("out_of_memory", "the RunPod worker ran out of GPU memory", true, text) : failed("backend_failed", "the RunPod job failed", true, text);
    }
    case "TIMED_OUT":
      return failed("timeout", "RunPod timed the job out", true);
    case "CANCELLED":
      // We cancel only jobs that already ended here, so this one was canceled on RunPod's side.
      return failed("backend_failed", "RunPod canceled the job", true);
    default:
      return failed("backend_failed", `RunPod answered status ${status.status}`, true);
  }
}

/** RunPod's bounds on a policy's fields, in ms (its docs: executionTimeout at least 5 s, ttl at least 10 s, both at most 7 days). */
const POLICY_MS = { executionTimeout: { min: 5_000, max: 7 * 86_400_000 }, ttl: { min: 10_000, max: 7 * 86_400_000 } } as const;
const within = (ms: number, { min, max }: { min: number; max: number }) => Math.min(max, Math.max(min, Math.ceil(ms)));

/**
 * How long past the backend's `timeout_s` RunPod keeps a job: its ttl deletes a finished job's
 * result too, and a result that came just before the timeout must still be there for the poll
 * that reads it (polls come at most 15 s apart).
 */
const TTL_MARGIN_MS = 30_000;

/**
 * The policy every `/run` carries: the backend's `timeout_s` as the job's running time, and, with a
 * margin, as its whole life at RunPod (`ttl`, queue time included; past it RunPod deletes the job,
 * whatever its state). Without it a job waits in RunPod's queue up to 24 h: a `/run` whose answer
 * was lost could start long after the gateway gave up on it, and be paid for beside the attempt
 * that replaced it. With it, the end of the ttl is the proof that it never will (see lost-call.ts).
 */
export const runpodPolicy = (config: BackendConfig) => ({
  executionTimeout: within(config.timeout_s * 1000, POLICY_MS.executionTimeout),
  ttl: within(config.timeout_s * 1000 + TTL_MARGIN_MS, POLICY_MS.ttl),
});

/** RunPod's auth: the endpoint's API key as Bearer. */
export const runpodHeaders = (config: BackendConfig): Record<string, string> => ({ "content-type": "application/json", ...(config.api_key ? { authorization: `Bearer ${config.api_key}` } : {}) });

/** Whether RunPod took a `/cancel`: a 2xx, or a 404 for a job it no longer knows. */
export const runpodStopped = (res: HttpResult): boolean => res.ok && ((res.status >= 200 && res.status < 300) || res.status === 404);

/** RunPod serverless running the A1111 worker of seed 000: submit, then webhook or polling. */
export class RunPodAdapter implements BackendAdapter {
  constructor(readonly config: BackendConfig) {}

  private headers(): Record<string, string> {
    return runpodHeaders(this.config);
  }

  async submit(req: GenerationRequest): Promise<Outcome> {
    const call = a1111Call(req.spec, req.initImage, backendModelName(this.config, req.spec.model));
    const body = { input: { api_name: call.api, ...call.body }, webhook: req.callbackUrl, policy: runpodPolicy(this.config) };
    // RunPod cannot be asked about a job whose id never came back: a cut `/run` is not sent again
    // before its ttl has run out, and the attempt waits for its callback meanwhile (see durable-objects/job/lost-call.ts).
    const res = await callBackend(`${this.config.url}/run`, { method: "POST", headers: this.headers(), body: jsonBody(body) }, 30_000, req.signal, cannotAsk);
    if (!res.ok) return res.outcome;
    if (res.status < 200 || res.status >= 300) return statusFailure(res.status, res.body);
    const json = parseJsonObject(res.body);
    if (!json || typeof json.id !== "string") return failed("backend_failed", "RunPod accepted the job without an id", true);
    return { kind: "pending", externalId: json.id, pollAfterMs: FIRST_POLL_MS };
  }

  async poll(externalId: string, { samples, upscale, signal, images }: { samples: number; upscale: boolean; signal: AbortSignal; images: ImageStore }): Promise<Outcome> {
    const res = await callBackendForImages(`${this.config.url}/status/${encodeURIComponent(externalId)}`, { headers: this.headers() }, { timeoutMs: 30_000, signal, imagesAt: runpodImagesAt(upscale), store: images });
    // A status call that failed or hung says nothing about the job, which may well be running.
    if (!res.ok) return failed("backend_unavailable", "the RunPod status call failed", true, res.outcome.kind === "failed" ? res.outcome.failure.message : "no answer");
    if (res.status === 404) return failed("backend_failed", "RunPod no longer knows the job", true);
    if (res.status !== 200) return failed("backend_unavailable", `RunPod status answered ${res.status}`, true);
    return runpodOutcome(res.answer, samples, upscale);
  }

  async callback(req: { body: CallbackSource; samples: number; upscale: boolean; images: ImageStore }): Promise<CallbackOutcome | undefined> {
    const answer = await readImageAnswer(await req.body.open(), runpodImagesAt(req.upscale), req.images);
    const json = answer.json;
    if (!json || typeof json.status !== "string" || typeof json.id !== "string") return undefined;
    return { ...runpodOutcome(answer, req.samples, req.upscale), externalId: json.id };
  }

  async cancel({ externalId }: { externalId: string | undefined }, signal: AbortSignal): Promise<boolean> {
    if (!externalId) return false;
    return runpodStopped(await callBackend(`${this.config.url}/cancel/${encodeURIComponent(externalId)}`, { method: "POST", headers: this.headers() }, 10_000, signal));
  }

  progress(req: ProgressRequest) {
    return readRunPodProgress(this.config, this.headers(), req);
  }

  async listModels(signal: AbortSignal): Promise<ModelInfo[]> {
    const res = await callBackend(`${this.config.url}/runsync`, { method: "POST", headers: this.headers(), body: JSON.stringify({ input: { api_name: "getModels" } }) }, 30_000, signal);
    if (!res.ok || res.status !== 200) return [];
    return a1111Models(parseJsonObject(res.body)?.output, this.config.name);
  }
}

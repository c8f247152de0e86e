/**
 * Progress from a RunPod worker that streams it: `GET /stream/{id}` answers the items the
 * worker yielded since the last call; the newest one that reads as progress counts. An item's
 * `output` may be a fraction (0–1), `{"progress", "step"?, "steps"?, "eta"?}`, or A1111's own
 * progress object (`{"progress", "eta_relative", "state": {"sampling_step", "sampling_steps", ...}}`).
 */
import type { BackendConfig } from "../config";
import { callBackend, parseJsonObject } from "./http";
import type { BackendProgress, ProgressReading, ProgressRequest } from "./types";

const STREAM_TIMEOUT_MS = 3_000;

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** One stream item's output as progress, or undefined when it is something else (a partial image...). */
export function streamItemProgress(output: unknown): BackendProgress | undefined {
  const o = obj(output);
  const state = obj(o.state);
  const fraction = num(output) ?? num(o.progress);
  if (fraction === undefined || fraction < 0 || fraction > 1) return undefined;
  return {
    fraction,
    step: num(o.step) ?? num(state.sampling_step) ?? 0,
    steps: num(o.steps) ?? num(state.sampling_steps) ?? 0,
    eta_s: num(o.eta) ?? num(o.eta_s) ?? num(o.eta_relative) ?? null,
    job: typeof state.job === "string" ? state.job : "",
    job_no: num(state.job_no) ?? 0,
    job_count: Math.max(1, num(state.job_count) ?? 1),
    job_timestamp: typeof state.job_timestamp === "string" ? state.job_timestamp : "0",
    textinfo: null,
  };
}

export async function readRunPodProgress(config: BackendConfig, headers: Record<string, string>, req: ProgressRequest): Promise<ProgressReading | undefined> {
  if (!req.externalId) return undefined;
  const res = await callBackend(`${config.url}/stream/${encodeURIComponent(req.externalId)}`, { headers }, STREAM_TIMEOUT_MS, req.signal);
  if (!res.ok || res.status !== 200) return undefined;
  const stream = parseJsonObject(res.body)?.stream;
  if (!Array.isArray(stream)) return undefined;
  for (let i = stream.length - 1; i >= 0; i--) {
    const progress = streamItemProgress(obj(stream[i]).output);
    if (progress) return { progress };
  }
  return undefined;
}

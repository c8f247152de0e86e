/**
 * Live progress of one generation on an A1111 backend. A1111's `/sdapi/v1/progress` describes
 * whatever it is running now, so the task is asked about first by the `force_task_id` it was sent
 * with (`POST /internal/progress`): only while that task is active do the step figures count.
 */
import type { BackendConfig } from "../config";
import { a1111Call, a1111Json } from "./a1111-api";
import type { BackendProgress, ProgressReading, ProgressRequest } from "./types";

const PROGRESS_TIMEOUT_MS = 3_000;

/**
 * An interrupt or a skip is sent only while the task has at least this long left by A1111's own
 * estimate: neither names a task, and one sent as the task ends would stop the next in its queue.
 */
export const STOP_MIN_ETA_S = 1;

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** What A1111 says of one task by its `force_task_id`: `active`, `queued`, `progress`, `eta`... */
const askTask = async (config: BackendConfig, taskId: string, opts: { timeoutMs: number; signal: AbortSignal }) =>
  obj(await a1111Json(config, "/internal/progress", { ...opts, body: { id_task: taskId, id_live_preview: -1, live_preview: false } }));

/** Reads the task's figures; undefined when the backend cannot tell (unreachable, or the task is unknown to it). */
export async function readA1111Progress(config: BackendConfig, req: ProgressRequest): Promise<ProgressReading | undefined> {
  const opts = { timeoutMs: PROGRESS_TIMEOUT_MS, signal: req.signal };
  const task = await askTask(config, req.taskId, opts);
  if (task.active !== true) {
    // Waiting behind another generation on that backend: nothing done yet.
    if (task.queued !== true) return undefined;
    return { progress: { fraction: 0, step: 0, steps: 0, eta_s: null, job: "", job_no: 0, job_count: 1, job_timestamp: "0", textinfo: str(task.textinfo) ?? null } };
  }
  const live = obj(await a1111Json(config, `/sdapi/v1/progress?skip_current_image=${req.image ? "false" : "true"}`, opts));
  // That describes whatever A1111 runs now: ours only if our task is still active after it was read
  // (a task that ended never runs again), else it may be the next task there, a neighbour's.
  if ((await askTask(config, req.taskId, opts)).active !== true) return undefined;
  const state = obj(live.state);
  const fraction = Math.min(1, Math.max(0, num(task.progress) ?? 0));
  const progress: BackendProgress = {
    fraction,
    step: num(state.sampling_step) ?? 0,
    steps: num(state.sampling_steps) ?? 0,
    eta_s: num(task.eta) ?? null,
    job: str(state.job) ?? "",
    job_no: num(state.job_no) ?? 0,
    job_count: Math.max(1, num(state.job_count) ?? 1),
    job_timestamp: str(state.job_timestamp) ?? "0",
    textinfo: str(task.textinfo) ?? str(live.textinfo) ?? null,
  };
  return { progress, image: req.image ? (str(live.current_image) ?? undefined) : undefined };
}

/**
 * A1111's skip ends the batch being sampled now, whoever's it is: it is sent only while A1111 says
 * this attempt's task is the active one with time left, so a neighbour's generation on a shared
 * backend is never skipped (the job sends one skip per attempt: see JobObject's skip).
 */
export async function skipA1111(config: BackendConfig, taskId: string, signal: AbortSignal): Promise<void> {
  const opts = { timeoutMs: PROGRESS_TIMEOUT_MS, signal };
  const task = await askTask(config, taskId, opts);
  if (task.active !== true || (typeof task.eta === "number" && task.eta < STOP_MIN_ETA_S)) return;
  await a1111Call(config, "/sdapi/v1/skip", { ...opts, body: {} });
}

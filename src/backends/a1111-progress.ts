/**
 * Live progress of one generation on an A1111 backend. A1111's `/sdapi/v1/progress` describes
 * whatever it is running now, so the task is asked about first by the `force_task_id` it was sent
 * with (see a1111-task.ts): only while that task is active do the step figures count.
 */
import type { BackendConfig } from "../config";
import { a1111Call, a1111Json } from "./a1111-api";
import { a1111Task, type A1111TaskState } from "./a1111-task";
import type { BackendProgress, ProgressReading, ProgressRequest } from "./types";

const PROGRESS_TIMEOUT_MS = 3_000;

/**
 * An interrupt or a skip is sent only while the task has at least this long left by A1111's own
 * estimate: neither names a task, and one sent as the task ends would stop the next in its queue.
 */
const STOP_MIN_ETA_S = 1;

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** Reads the task's figures; undefined when the backend cannot tell (unreachable, or the task is unknown to it). */
export async function readA1111Progress(config: BackendConfig, req: ProgressRequest): Promise<ProgressReading | undefined> {
  const opts = { timeoutMs: PROGRESS_TIMEOUT_MS, image: req.image };
  const task = await a1111Task(config, req.taskId, req.signal, opts);
  if (task.state !== "active") {
    // Waiting behind another generation on that backend: nothing done yet.
    if (task.state !== "queued") return undefined;
    return { progress: { fraction: 0, step: 0, steps: 0, eta_s: null, job: "", job_no: 0, job_count: 1, job_timestamp: "0", textinfo: task.textinfo ?? null } };
  }
  // An API-only A1111 named the task in the very answer that holds the figures.
  let live = task.live;
  if (!live) {
    live = obj(await a1111Json(config, `/sdapi/v1/progress?skip_current_image=${req.image ? "false" : "true"}`, { ...opts, signal: req.signal }));
    // That describes whatever A1111 runs now: ours only if our task is still active after it was read
    // (a task that ended never runs again), else it may be the next task there, a neighbour's.
    if ((await a1111Task(config, req.taskId, req.signal, opts)).state !== "active") return undefined;
  }
  const state = obj(live.state);
  const fraction = Math.min(1, Math.max(0, task.progress ?? 0));
  const progress: BackendProgress = {
    fraction,
    step: num(state.sampling_step) ?? 0,
    steps: num(state.sampling_steps) ?? 0,
    eta_s: task.eta ?? null,
    job: str(state.job) ?? "",
    job_no: num(state.job_no) ?? 0,
    job_count: Math.max(1, num(state.job_count) ?? 1),
    job_timestamp: str(state.job_timestamp) ?? "0",
    textinfo: task.textinfo ?? str(live.textinfo) ?? null,
  };
  return { progress, image: req.image ? (str(live.current_image) ?? undefined) : undefined };
}

/** Whether an interrupt or a skip may be sent for the task: A1111 runs it now, with time left. */
export async function stoppable(config: BackendConfig, taskId: string, signal: AbortSignal): Promise<{ state: A1111TaskState; now: boolean }> {
  const task = await a1111Task(config, taskId, signal, { timeoutMs: PROGRESS_TIMEOUT_MS });
  return { state: task.state, now: task.state === "active" && !(task.eta !== undefined && task.eta < STOP_MIN_ETA_S) };
}

/**
 * A1111's skip ends the batch being sampled now, whoever's it is: it is sent only while A1111 says
 * this attempt's task is the active one with time left, so a neighbour's generation on a shared
 * backend is never skipped (the job sends one skip per attempt: see JobObject's skip).
 */
export async function skipA1111(config: BackendConfig, taskId: string, signal: AbortSignal): Promise<void> {
  if (!(await stoppable(config, taskId, signal)).now) return;
  await a1111Call(config, "/sdapi/v1/skip", { timeoutMs: PROGRESS_TIMEOUT_MS, signal, body: {} });
}

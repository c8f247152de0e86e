/**
 * Whether an A1111 backend has one task, by the `force_task_id` it was sent with
 * (`POST /internal/progress`): what tells a generation that never arrived from one that runs.
 * An A1111 started with `--nowebui` serves only its API (webui.py `api_only`): no
 * `/internal/progress`. There `/sdapi/v1/progress` still names the task it runs (`current_task`),
 * so the task can be told active, or, while A1111 runs nothing, not there; while it runs another,
 * whether ours waits, has ended or never came cannot be told (`untold`).
 */
import type { BackendConfig } from "../config";
import type { Arrival } from "../lib/stale-connections";
import { a1111Call, a1111Json } from "./a1111-api";
import { parseJsonObject } from "./http";

/**
 * `unknown`: A1111 answered and has no such task (not queued, not running, not completed);
 * `untold`: it answered, and is not running the task, but cannot say more (no `/internal/progress`).
 */
export type A1111TaskState = "active" | "queued" | "completed" | "unknown" | "untold" | "unreachable";

/** What A1111 says of the task: its state, and while it is active its figures (`eta` in seconds). */
export type A1111Task = { state: A1111TaskState; progress?: number; eta?: number; textinfo?: string; live?: Record<string, unknown> };

const ASK_TIMEOUT_MS = 3_000;

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

export async function a1111Task(config: BackendConfig, taskId: string, signal: AbortSignal, opts: { timeoutMs?: number; image?: boolean } = {}): Promise<A1111Task> {
  const timeoutMs = opts.timeoutMs ?? ASK_TIMEOUT_MS;
  const res = await a1111Call(config, "/internal/progress", { body: { id_task: taskId, id_live_preview: -1, live_preview: false }, timeoutMs, signal });
  if (res.ok && res.status === 404) return currentTask(config, taskId, { timeoutMs, signal, image: opts.image ?? false });
  const task = res.ok && res.status === 200 ? parseJsonObject(res.body) : undefined;
  if (!task) return { state: "unreachable" };
  if (task.active === true) return { state: "active", progress: num(task.progress), eta: num(task.eta), textinfo: str(task.textinfo) };
  if (task.queued === true) return { state: "queued", textinfo: str(task.textinfo) };
  return { state: task.completed === true ? "completed" : "unknown" };
}

/**
 * An API-only A1111: the task is active when `/sdapi/v1/progress` names it, and its figures are that
 * answer's. A1111 runs one task at a time under its queue lock, naming it `current_task` from when it
 * takes the lock until it ends: while it names none, no task holds the lock and none waits for it,
 * so ours has ended or never came (`unknown`). Asked twice, a moment apart, as the lock passes from
 * one task to the next in between.
 */
async function currentTask(config: BackendConfig, taskId: string, opts: { timeoutMs: number; signal: AbortSignal; image: boolean }): Promise<A1111Task> {
  const read = async () => parseObject(await a1111Json(config, `/sdapi/v1/progress?skip_current_image=${opts.image ? "false" : "true"}`, opts));
  const idle = (live: Record<string, unknown>) => (live.current_task === null || live.current_task === undefined) && num(parseObject(live.state)?.job_count) === 0;
  let live = await read();
  for (let look = 0; live && look < 2; look++) {
    if (live.current_task === taskId) return { state: "active", progress: num(live.progress), eta: num(live.eta_relative), textinfo: str(live.textinfo), live };
    if (!idle(live)) return { state: "untold" };
    if (look === 0) {
      await sleep(IDLE_RECHECK_MS, opts.signal);
      live = await read();
    }
  }
  return live ? { state: "unknown" } : { state: "unreachable" };
}

/** How long after an idle answer an API-only A1111 is asked again (a lock handed from one task to the next). */
const IDLE_RECHECK_MS = 1_000;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

const parseObject = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

export async function a1111TaskState(config: BackendConfig, taskId: string, signal: AbortSignal): Promise<A1111TaskState> {
  return (await a1111Task(config, taskId, signal)).state;
}

/** A generation whose send failed: sent again only when A1111 has never heard of its task. */
export async function a1111Arrival(config: BackendConfig, taskId: string, signal: AbortSignal): Promise<Arrival> {
  const state = await a1111TaskState(config, taskId, signal);
  return state === "unknown" ? "absent" : state === "unreachable" ? "down" : state === "untold" ? "unknown" : "arrived";
}

/**
 * Whether an A1111 backend has one task, by the `force_task_id` it was sent with
 * (`POST /internal/progress`): what tells a generation that never arrived from one that runs.
 */
import type { BackendConfig } from "../config";
import type { Arrival } from "../lib/stale-connections";
import { a1111Call } from "./a1111-api";
import { parseJsonObject } from "./http";

/** `unknown`: A1111 answered and has no such task (not queued, not running, not completed). */
export type A1111TaskState = "active" | "queued" | "completed" | "unknown" | "unreachable";

const ASK_TIMEOUT_MS = 3_000;

export async function a1111TaskState(config: BackendConfig, taskId: string, signal: AbortSignal): Promise<A1111TaskState> {
  const res = await a1111Call(config, "/internal/progress", { body: { id_task: taskId, id_live_preview: -1, live_preview: false }, timeoutMs: ASK_TIMEOUT_MS, signal });
  const task = res.ok && res.status === 200 ? parseJsonObject(res.body) : undefined;
  if (!task) return "unreachable";
  if (task.active === true) return "active";
  if (task.queued === true) return "queued";
  return task.completed === true ? "completed" : "unknown";
}

/** A generation whose send failed: sent again only when A1111 has never heard of its task. */
export async function a1111Arrival(config: BackendConfig, taskId: string, signal: AbortSignal): Promise<Arrival> {
  const state = await a1111TaskState(config, taskId, signal);
  return state === "unknown" ? "absent" : state === "unreachable" ? "down" : "arrived";
}

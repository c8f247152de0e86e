/**
 * A synchronous call the job lost while the backend may still run it: cut by a gateway restart
 * (on Cloudflare every deploy resets every Durable Object), or a connection lost after the backend
 * may have taken the request. It is not sent again, there or elsewhere, until that backend no
 * longer runs it, and its slot stays taken until then, so `max_concurrency` holds.
 */
import { adapterFor } from "../../src/backends";
import { a1111TaskState } from "../../src/backends/a1111-task";
import { clientIdOf, findAttemptPrompt, findPrompt, promptIdOf } from "../../src/backends/comfyui-api";
import { runpodPolicy } from "../../src/backends/runpod";
import { DEFAULT_TIMEOUT_S, type BackendConfig } from "../../src/config";
import { withDeadline } from "../../src/lib/deadline";

export type LostCall =
  /** It may still run: keep the slot, wait, ask again on the next heartbeat (never past `until`). */
  | { running: true; until: number; found: string }
  /**
   * It no longer runs (or would have ended by now): the slot goes back and the job dispatches
   * again; `overdue`: the call outlived the backend's `timeout_s`; `held`: the backend was seen to
   * hold it still, twice that long after it began.
   */
  | { running: false; found: string; unreachable: boolean; overdue: boolean; held?: boolean }
  /** The backend has it under this id (a ComfyUI prompt): the attempt follows it there, never sending it again. */
  | { reattach: string; found: string };

const ASK_TIMEOUT_MS = 3_000;
/** ComfyUI is asked up to three times (history, queue, history). */
const COMFY_ASK_TIMEOUT_MS = 10_000;

/**
 * What became of a lost call (cut by a restart, or unanswered within the backend's `timeout_s`).
 * A1111 is asked by the attempt's `force_task_id`; an active task is interrupted (the adapter's
 * cancel interrupts only a task A1111 calls active), and its word holds past the call's timeout:
 * a task it still runs or has queued keeps the slot, up to twice that timeout. Anything that
 * cannot be asked (Cerebrium, an A1111 upscale) is presumed to run until the backend's timeout
 * after the call began; a RunPod `/run` whose id never came back, until RunPod has deleted it.
 */
export async function checkLostCall(backend: BackendConfig | undefined, call: { taskId: string; askable: boolean; startedAt: number; waitingUntil: number | null }): Promise<LostCall> {
  if (!backend) {
    // Taken out of BACKENDS (renamed, removed) while the call was out: it can no longer be asked
    // about, and may still run there: waited out as a call that cannot be asked, to the default timeout.
    const until = call.startedAt + DEFAULT_TIMEOUT_S * 1000;
    if (Date.now() >= until) return { running: false, found: "the backend is no longer configured, and the call would have ended by now", unreachable: false, overdue: true };
    return { running: true, until, found: "the backend is no longer configured: waiting until the call would have ended" };
  }
  if (backend.kind === "runpod" || backend.kind === "runpod-comfyui") return runpodLostCall(backend, call.waitingUntil);
  const until = call.startedAt + backend.timeout_s * 1000;
  const over = Date.now() >= until;
  if (backend.kind === "comfyui") return comfyLostCall(backend, call.taskId, until, over);
  if (backend.kind !== "a1111" || !call.askable) {
    return over ? { running: false, found: "the call would have ended by now", unreachable: false, overdue: true } : { running: true, until, found: "the backend cannot be asked: waiting until the call would have ended" };
  }
  const state = await withDeadline(ASK_TIMEOUT_MS, (signal) => a1111TaskState(backend, call.taskId, signal));
  if (state === "unknown" || state === "completed") return { running: false, found: state === "completed" ? "the backend has completed it" : "the backend does not know it", unreachable: false, overdue: over };
  if (state === "unreachable") return over ? { running: false, found: "the backend could not be reached", unreachable: true, overdue: true } : { running: true, until, found: "the backend could not be asked" };
  // An API-only A1111 not running it now: queued, completed or never sent, it cannot say which.
  if (state === "untold") return over ? { running: false, found: "the call would have ended by now", unreachable: false, overdue: true } : { running: true, until, found: "the backend is not running it and cannot say more" };
  const giveUp = until + backend.timeout_s * 1000;
  if (Date.now() >= giveUp) return { running: false, found: "the backend still has it, twice its timeout after the call began", unreachable: false, overdue: true, held: true };
  if (state === "active") {
    await withDeadline(ASK_TIMEOUT_MS, (signal) => adapterFor(backend).cancel({ externalId: undefined, taskId: call.taskId }, signal)).catch(() => undefined);
    return { running: true, until: over ? giveUp : until, found: "the backend is running it: interrupted" };
  }
  return { running: true, until: over ? giveUp : until, found: "the backend has it queued" };
}

/**
 * A RunPod `/run` whose answer (the job's id) was lost cannot be asked about, and RunPod may hold
 * it queued long after the call: it waits until the `/run`'s ttl has run out counted from when the
 * loss was found (RunPod got the request before then, if at all), when RunPod has deleted it
 * whatever its state (runpodPolicy). Its callback settles the attempt meanwhile if it ran.
 */
function runpodLostCall(backend: BackendConfig, waitingUntil: number | null): LostCall {
  const until = waitingUntil ?? Date.now() + runpodPolicy(backend).ttl;
  if (Date.now() >= until) return { running: false, found: "RunPod deleted it by now (its ttl ran out)", unreachable: false, overdue: true };
  return { running: true, until, found: "RunPod cannot be asked: waiting for its callback until the run's ttl has run out" };
}

/**
 * A ComfyUI prompt is found by the attempt's prompt_id: in the history or the queue it arrived and
 * is followed there; in neither, ComfyUI shows it never got it.
 */
async function comfyLostCall(backend: BackendConfig, taskId: string, until: number, over: boolean): Promise<LostCall> {
  const [promptId, clientId] = await Promise.all([promptIdOf(taskId), clientIdOf(taskId)]);
  const place = await withDeadline(COMFY_ASK_TIMEOUT_MS, (signal) => findAttemptPrompt(backend, { promptId, clientId }, signal));
  if (place.at === "absent") return { running: false, found: "the backend never got the prompt", unreachable: false, overdue: over };
  if (place.at === "unreachable") return over ? { running: false, found: "the backend could not be reached", unreachable: true, overdue: true } : { running: true, until, found: "the backend could not be asked" };
  return { reattach: place.promptId ?? promptId, found: place.at === "history" ? "the backend has run the prompt" : `the backend has the prompt (${place.at})` };
}

/** Asks of a canceled call are bounded so that its scheduler's question (10 s) is answered. */
const CANCELED_ASK_MS = 4_000;

/**
 * Whether the call of an attempt canceled with its job may still occupy its backend: its scheduler
 * asks when the slot's lease lapsed, as after a restart that cut the cancel's stop. Asked where the
 * backend can say (A1111 by task, ComfyUI by prompt, RunPod by its job's id), and told to stop again
 * if it still runs it, so a stop lost with a restart is sent after all; what cannot be asked is
 * presumed to run until the backend's timeout after the call began.
 */
export async function canceledCallRuns(backend: BackendConfig, call: { taskId: string; externalId: string | undefined; askable: boolean; startedAt: number }): Promise<boolean> {
  if (Date.now() >= call.startedAt + backend.timeout_s * 1000) return false;
  const ref = { externalId: call.externalId, taskId: call.taskId };
  const stop = () => withDeadline(CANCELED_ASK_MS, (signal) => adapterFor(backend).cancel(ref, signal)).catch(() => false);
  if (backend.kind === "a1111" && call.askable) {
    const state = await withDeadline(CANCELED_ASK_MS, (signal) => a1111TaskState(backend, call.taskId, signal)).catch(() => "unreachable" as const);
    if (state === "completed" || state === "unknown") return false;
    if (state === "active") await stop();
    return true;
  }
  if (backend.kind === "comfyui") {
    const [promptId, clientId] = await Promise.all([promptIdOf(call.taskId), clientIdOf(call.taskId)]);
    const place = await withDeadline(CANCELED_ASK_MS, (signal) => (call.externalId ? findPrompt(backend, call.externalId, signal) : findAttemptPrompt(backend, { promptId, clientId }, signal))).catch(() => ({ at: "unreachable" as const }));
    if (place.at === "history" || place.at === "absent") return false;
    if (place.at !== "unreachable") await stop();
    return true;
  }
  // RunPod stops a canceled job, and answers 404 for one it no longer has: either way nothing runs.
  if ((backend.kind === "runpod" || backend.kind === "runpod-comfyui") && call.externalId) return !(await stop());
  return true;
}

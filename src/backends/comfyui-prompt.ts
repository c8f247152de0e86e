/**
 * Queuing a prompt (`POST /prompt`) and following it to its end: on the socket while it is open,
 * then by polling the history (bounded by the backend's timeout). ComfyUI's answer to a bad graph
 * is read as the request's fault.
 */
import type { BackendConfig } from "../config";
import type { Workflow } from "../jobs/spec";
import { comfyHeaders, findPrompt, promptArrival } from "./comfyui-api";
import { endOutcome, promptEnd } from "./comfyui-history";
import type { PromptSocket } from "./comfyui-socket";
import { callBackend, failed, parseJsonObject, statusFailure } from "./http";
import type { ImageStore, Outcome } from "./types";

const QUEUE_TIMEOUT_MS = 30_000;
/** With the socket open, the history is still read this often, in case a message never comes. */
const SOCKET_QUIET_MS = 15_000;
/**
 * A waiting prompt's look after ComfyUI's queue changed (a `status` message, which every client's
 * put, start, end and delete sends) comes at most this often, however busy the server's other clients.
 */
const QUEUE_CHANGE_LOOK_MS = 2_000;
/** Without a socket (or once it ends), the history is polled from this interval up to the next. */
const POLL_FIRST_MS = 500;
const POLL_MAX_MS = 10_000;
const NODE_ERRORS_MAX_CHARS = 1_000;

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const text = (v: unknown): string => (typeof v === "string" ? v : v === undefined || v === null ? "" : JSON.stringify(v));

/** ComfyUI's 400 to `/prompt` in a line: the error, then each node's id, class and messages. */
export function summarizeNodeErrors(body: Record<string, unknown> | undefined): string {
  const error = obj(body?.error);
  const nodes = Object.entries(obj(body?.node_errors)).map(([id, n]) => {
    const node = obj(n);
    const errors = Array.isArray(node.errors) ? node.errors.map((e) => [text(obj(e).message), text(obj(e).details)].filter(Boolean).join(": ")) : [];
    return `node ${id}${node.class_type ? ` (${text(node.class_type)})` : ""}: ${errors.join("; ") || "invalid"}`;
  });
  const head = [text(error.message), text(error.details)].filter(Boolean).join(": ") || "ComfyUI refused the prompt";
  return [head, ...nodes].join(" | ").slice(0, NODE_ERRORS_MAX_CHARS);
}

/**
 * Sends the prompt under the attempt's ids; when ComfyUI queued it, the id it answered (the one sent,
 * or its own on a ComfyUI older than `/prompt`'s `prompt_id` field). A cut connection is sent again
 * only when ComfyUI shows it never got it (its history and queue, by prompt_id and client id).
 * `refused`: ComfyUI queued the graph with some of its outputs dropped, each failing its checks
 * (`node_errors` in a 200: execution.py validates each output apart and runs those that pass).
 */
export async function queuePrompt(
  config: BackendConfig,
  prompt: Workflow,
  ids: { promptId: string; clientId: string; extraData?: Record<string, unknown> },
  signal: AbortSignal,
): Promise<{ queued: string; refused?: string } | Outcome> {
  const extra = ids.extraData && Object.keys(ids.extraData).length ? { extra_data: ids.extraData } : {};
  // ComfyUI puts client_id into extra_data itself; it is Easel's own, whatever the client's extra_data says.
  const body = JSON.stringify({ prompt, client_id: ids.clientId, prompt_id: ids.promptId, ...extra });
  const res = await callBackend(
    `${config.url}/prompt`,
    { method: "POST", headers: { ...comfyHeaders(config), "content-type": "application/json" }, body },
    QUEUE_TIMEOUT_MS,
    signal,
    () => promptArrival(config, ids, signal),
  );
  if (!res.ok) return res.outcome;
  if (res.status === 200) {
    const answer = parseJsonObject(res.body);
    const queued = typeof answer?.prompt_id === "string" && answer.prompt_id ? answer.prompt_id : ids.promptId;
    return Object.keys(obj(answer?.node_errors)).length ? { queued, refused: summarizeNodeErrors({ ...answer, error: { message: "ComfyUI dropped outputs that failed its checks" } }) } : { queued };
  }
  // A graph ComfyUI cannot run (an unknown node, a model it lacks) would fail the same anywhere.
  if (res.status === 400) return failed("invalid_request", summarizeNodeErrors(parseJsonObject(res.body)), false);
  return statusFailure(res.status, res.body);
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * Follows a queued prompt until its history shows its end, then reads its outputs. `timeout` when
 * it has not ended by the backend's timeout (the caller stops it there).
 */
export async function followPrompt(
  config: BackendConfig,
  promptId: string,
  ctx: { socket: PromptSocket | undefined; expected?: number; images: ImageStore; signal: AbortSignal; lookFirst?: boolean },
): Promise<Outcome> {
  const deadline = Date.now() + config.timeout_s * 1000;
  let pollMs = POLL_FIRST_MS;
  let listening = ctx.socket !== undefined;
  // A prompt followed again may have ended already: its history is read before any wait.
  let waiting = ctx.lookFirst !== true;
  let looked = 0;
  while (!ctx.signal.aborted && Date.now() < deadline) {
    const left = deadline - Date.now();
    if (!waiting) waiting = true;
    else if (listening && ctx.socket && !ctx.socket.closed) {
      let told = await ctx.socket.wait(Math.min(SOCKET_QUIET_MS, left));
      // Queue changes within QUEUE_CHANGE_LOOK_MS of the last look wait for its end; an end does not.
      const lookAt = Math.min(looked + QUEUE_CHANGE_LOOK_MS, deadline);
      while (told === "changed" && Date.now() < lookAt && !ctx.signal.aborted) told = await ctx.socket.wait(lookAt - Date.now());
      // An end the socket told of shows in the history a moment later: from then on the history is polled.
      if (told === "ended") listening = false;
    } else {
      await sleep(Math.min(pollMs, left), ctx.signal);
      pollMs = Math.min(POLL_MAX_MS, Math.round(pollMs * 1.5));
    }
    looked = Date.now();
    const place = await findPrompt(config, promptId, ctx.signal);
    if (place.at === "history") {
      const end = promptEnd(place.entry);
      if (end) return endOutcome(config, end, ctx);
    }
    // ComfyUI keeps its queue and history in memory: a restart there loses the prompt.
    if (place.at === "absent") return failed("backend_failed", "the backend no longer has the prompt (restarted?)", true);
  }
  if (ctx.signal.aborted) return failed("canceled", "the attempt was abandoned", false);
  return failed("timeout", `the prompt did not end within ${config.timeout_s} s`, true);
}

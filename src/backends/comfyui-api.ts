/**
 * Plain calls to a ComfyUI server (auth, bounded time), the ids an attempt is known by there, and
 * where a prompt is: in its history, its queue, or nowhere.
 */
import type { BackendConfig } from "../config";
import { sha256Hex } from "../lib/crypto";
import type { Arrival } from "../lib/stale-connections";
import { basicAuth, callBackend, callBackendAtMost, parseJsonObject, type BackendInit, type HttpResult } from "./http";
import type { ComfyChoices } from "./comfyui-plan";

export const ASK_TIMEOUT_MS = 5_000;

/** Basic auth when the backend has a username or password, else its key as Bearer (a proxy in front of ComfyUI). */
export function comfyHeaders(config: BackendConfig): Record<string, string> {
  if (config.username !== undefined || config.password !== undefined) return { authorization: basicAuth(config.username ?? "", config.password ?? "") };
  return config.api_key ? { authorization: `Bearer ${config.api_key}` } : {};
}

/** A lowercase hyphenated UUID made from `seed`: the same attempt always has the same ids, stored nowhere. */
async function uuidOf(seed: string): Promise<string> {
  const h = (await sha256Hex(seed)).slice(0, 32).split("");
  // Version 8 (custom) and the RFC 4122 variant, so it parses as a UUID anywhere.
  h[12] = "8";
  h[16] = ((parseInt(h[16] ?? "0", 16) & 0x3) | 0x8).toString(16);
  const s = h.join("");
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/** The attempt's `prompt_id`: a restarted gateway finds its prompt without having stored anything before the call. */
export const promptIdOf = (taskId: string): Promise<string> => uuidOf(`easel comfyui prompt ${taskId}`);
/** The attempt's socket `clientId`: ComfyUI sends a prompt's messages to its client only, so a new socket under it follows the same prompt. */
export const clientIdOf = (taskId: string): Promise<string> => uuidOf(`easel comfyui client ${taskId}`);

/** One call to `path`; `body` makes it a POST of that JSON. */
export function comfyCall(config: BackendConfig, path: string, opts: { body?: unknown; timeoutMs?: number; signal: AbortSignal }): Promise<HttpResult> {
  const headers = comfyHeaders(config);
  const init: BackendInit = opts.body === undefined ? { headers } : { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(opts.body) };
  return callBackend(config.url + path, init, opts.timeoutMs ?? ASK_TIMEOUT_MS, opts.signal);
}

/** The JSON object ComfyUI answered at `path`, or undefined when it did not answer 200 with one. */
export async function comfyJson(config: BackendConfig, path: string, signal: AbortSignal): Promise<Record<string, unknown> | undefined> {
  const res = await comfyCall(config, path, { signal });
  return res.ok && res.status === 200 ? parseJsonObject(res.body) : undefined;
}

/** The prompt's history entry (`{prompt, outputs, status}`), `null` when it has none yet, undefined when ComfyUI did not answer. */
export async function historyOf(config: BackendConfig, promptId: string, signal: AbortSignal): Promise<Record<string, unknown> | null | undefined> {
  const history = await comfyJson(config, `/history/${encodeURIComponent(promptId)}`, signal);
  if (!history) return undefined;
  const entry = history[promptId];
  return entry && typeof entry === "object" && !Array.isArray(entry) ? (entry as Record<string, unknown>) : null;
}

/** Where the prompt is in ComfyUI's queue; undefined when ComfyUI did not answer. */
export async function queuePlace(config: BackendConfig, promptId: string, signal: AbortSignal): Promise<"running" | "pending" | "absent" | undefined> {
  const queue = await comfyJson(config, "/queue", signal);
  if (!queue) return undefined;
  const has = (list: unknown) => Array.isArray(list) && list.some((item) => Array.isArray(item) && item[1] === promptId);
  return has(queue.queue_running) ? "running" : has(queue.queue_pending) ? "pending" : "absent";
}

/** The graph of a queued prompt (its `/queue` item), undefined when it is not queued or ComfyUI did not answer. */
export async function queuedGraph(config: BackendConfig, promptId: string, signal: AbortSignal): Promise<Record<string, unknown> | undefined> {
  const queue = await comfyJson(config, "/queue", signal);
  const items = [queue?.queue_running, queue?.queue_pending].flatMap((l) => (Array.isArray(l) ? l : []));
  const item: unknown = items.find((i) => Array.isArray(i) && i[1] === promptId);
  const graph: unknown = Array.isArray(item) ? item[2] : undefined;
  return graph && typeof graph === "object" && !Array.isArray(graph) ? (graph as Record<string, unknown>) : undefined;
}

/** `promptId`: the id ComfyUI knows the prompt by, when it is not the one asked for (see findAttemptPrompt). */
export type PromptPlace = ({ at: "history"; entry: Record<string, unknown> } | { at: "running" | "pending" | "absent" | "unreachable" }) & { promptId?: string };

/**
 * Where a prompt is. History is asked again after the queue, since a prompt that ended between the
 * two calls moves from the queue to the history: absent from all three is proof it never arrived.
 */
export async function findPrompt(config: BackendConfig, promptId: string, signal: AbortSignal): Promise<PromptPlace> {
  for (let round = 0; round < 2; round++) {
    const entry = await historyOf(config, promptId, signal);
    if (entry === undefined) return { at: "unreachable" };
    if (entry) return { at: "history", entry };
    if (round === 1) return { at: "absent" };
    const place = await queuePlace(config, promptId, signal);
    if (place === undefined) return { at: "unreachable" };
    if (place !== "absent") return { at: place };
  }
  return { at: "absent" };
}

/**
 * How many of the latest history entries are searched for an attempt's client id, and how much of
 * the answer (or of the queue's) is read: each entry holds its graph, and another tenant's may be
 * large. Past that the prompt's place cannot be told (`unreachable`, which never sends it again).
 */
const HISTORY_SEARCHED = 64;
const LIST_MAX_BYTES = 8 * 1024 * 1024;

/** ComfyUI's JSON object at `path`, read up to LIST_MAX_BYTES; undefined when it did not answer one within that. */
async function comfyListJson(config: BackendConfig, path: string, signal: AbortSignal): Promise<Record<string, unknown> | undefined> {
  const res = await callBackendAtMost(config.url + path, { headers: comfyHeaders(config) }, { timeoutMs: ASK_TIMEOUT_MS, maxBytes: LIST_MAX_BYTES, signal });
  return res.ok && res.status === 200 ? parseJsonObject(res.body) : undefined;
}

const clientOf = (item: unknown): unknown => (Array.isArray(item) ? (item[3] as { client_id?: unknown } | undefined)?.client_id : undefined);

/**
 * Where an attempt's prompt is: by the prompt_id it was sent with, else by its client id. A ComfyUI
 * older than the `prompt_id` field of `/prompt` (before v0.3.45, July 2025) gives the prompt an id
 * of its own; the client id, the attempt's alone, is in the prompt's queue item and history entry.
 */
export async function findAttemptPrompt(config: BackendConfig, ids: { promptId: string; clientId: string }, signal: AbortSignal): Promise<PromptPlace> {
  const byId = await findPrompt(config, ids.promptId, signal);
  if (byId.at !== "absent") return byId;
  for (let round = 0; round < 2; round++) {
    const history = await comfyListJson(config, `/history?max_items=${HISTORY_SEARCHED}`, signal);
    if (!history) return { at: "unreachable" };
    const found = Object.entries(history).find(([, e]) => clientOf((e as { prompt?: unknown } | null)?.prompt) === ids.clientId);
    if (found) return { at: "history", entry: found[1] as Record<string, unknown>, promptId: found[0] };
    if (round === 1) return { at: "absent" };
    const queue = await comfyListJson(config, "/queue", signal);
    if (!queue) return { at: "unreachable" };
    for (const at of ["running", "pending"] as const) {
      const list = queue[`queue_${at}`];
      const item: unknown = Array.isArray(list) ? list.find((i) => clientOf(i) === ids.clientId) : undefined;
      if (Array.isArray(item) && typeof item[1] === "string") return { at, promptId: item[1] };
    }
  }
  return { at: "absent" };
}

/** Whether a `/prompt` whose answer was lost reached ComfyUI. */
export async function promptArrival(config: BackendConfig, ids: { promptId: string; clientId: string }, signal: AbortSignal): Promise<Arrival> {
  const place = await findAttemptPrompt(config, ids, signal);
  return place.at === "absent" ? "absent" : place.at === "unreachable" ? "down" : "arrived";
}

/** The choices of one input of one node class, as `/object_info/{class}` lists them. */
async function choicesOf(config: BackendConfig, node: string, input: string, signal: AbortSignal): Promise<string[] | undefined> {
  const info = await comfyJson(config, `/object_info/${node}`, signal);
  if (!info) return undefined;
  const required = (info[node] as { input?: { required?: Record<string, unknown> } } | undefined)?.input?.required;
  const spec = required?.[input];
  // `[choices, opts]`, or `["COMBO", {options}]` as newer servers write their V3 nodes.
  const list: unknown = !Array.isArray(spec) ? undefined : spec[0] === "COMBO" ? (spec[1] as { options?: unknown } | undefined)?.options : spec[0];
  // A node class the server lacks (no upscale nodes) has no choices.
  return Array.isArray(list) ? list.filter((v): v is string => typeof v === "string") : [];
}

/** The checkpoints and upscale models the server lists; `listed` false when it could not be asked. */
export async function comfyChoices(config: BackendConfig, signal: AbortSignal): Promise<ComfyChoices> {
  const [checkpoints, upscaleModels] = await Promise.all([choicesOf(config, "CheckpointLoaderSimple", "ckpt_name", signal), choicesOf(config, "UpscaleModelLoader", "model_name", signal)]);
  return { checkpoints: checkpoints ?? [], upscaleModels: upscaleModels ?? [], listed: checkpoints !== undefined };
}

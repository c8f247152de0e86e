/**
 * A ComfyUI prompt's history entry read as an outcome: its saved images fetched with `/view` and
 * stored (node-id order, then their order within the node), or the failure it ended with.
 */
import type { BackendConfig } from "../config";
import { failed } from "./http";
import { comfyHeaders } from "./comfyui-api";
import type { FailedNode, ImageStore, Outcome } from "./types";
import type { StoredImage } from "../storage/images";
import { withDeadline } from "../lib/deadline";

const VIEW_TIMEOUT_MS = 60_000;

export interface ComfyOutput {
  node: string;
  filename: string;
  subfolder: string;
}

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** Numeric ids in numeric order (ComfyUI's "10" comes after "9"), others after them by text. */
export const byNodeId = (a: string, b: string): number => {
  const [x, y] = [Number(a), Number(b)];
  if (Number.isInteger(x) && Number.isInteger(y)) return x - y;
  if (Number.isInteger(x) !== Number.isInteger(y)) return Number.isInteger(x) ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
};

/** The images a prompt saved (`type: "output"`; previews are `temp` and are not outputs). */
export function savedImages(outputs: unknown): ComfyOutput[] {
  const all = obj(outputs);
  return Object.keys(all)
    .sort(byNodeId)
    .flatMap((node) => {
      const images = obj(all[node]).images;
      if (!Array.isArray(images)) return [];
      return images.flatMap((i): ComfyOutput[] => {
        const image = obj(i);
        if (image.type !== "output" || typeof image.filename !== "string") return [];
        return [{ node, filename: image.filename, subfolder: typeof image.subfolder === "string" ? image.subfolder : "" }];
      });
    });
}

/** How a prompt ended, by its history entry's status and messages. */
export type PromptEnd =
  | { kind: "success"; outputs: ComfyOutput[] }
  | { kind: "error"; node: string; nodeType: string; message: string }
  | { kind: "interrupted" };

export function promptEnd(entry: Record<string, unknown>): PromptEnd | undefined {
  const status = obj(entry.status);
  const messages = Array.isArray(status.messages) ? status.messages : [];
  const message = (type: string) => messages.find((m): m is [string, unknown] => Array.isArray(m) && m[0] === type);
  if (status.status_str === "success") return { kind: "success", outputs: savedImages(entry.outputs) };
  if (status.status_str !== "error") return undefined;
  if (message("execution_interrupted")) return { kind: "interrupted" };
  return errorEnd(obj(message("execution_error")?.[1]));
}

/** An `execution_error` message's data as a prompt's end. */
export function errorEnd(data: Record<string, unknown>): PromptEnd {
  const str = (v: unknown) => (typeof v === "string" || typeof v === "number" ? String(v) : "");
  return { kind: "error", node: str(data.node_id), nodeType: str(data.node_type), message: str(data.exception_message).trim() || "the graph failed to run" };
}

/**
 * A node's exception as the attempt's failure. In a tenant's own graph it fails the job: the same
 * graph would raise it on any backend. In a graph Easel built (a canonical job) it is the backend's
 * fault and fails over, counted against it, unless it ran out of memory (which the job's size can
 * bring about anywhere, so it fails over without counting).
 */
export function nodeFailure(message: string, canonical: boolean, node?: FailedNode): Outcome {
  const text = message.slice(0, 1000);
  if (!canonical) return { kind: "failed", failure: { code: "backend_error", message: text, retryable: false, ...(node ? { node } : {}) } };
  return /out ?of ?memory|OutOfMemoryError/i.test(message) ? failed("out_of_memory", "the backend ran out of GPU memory", true, text) : failed("backend_failed", text, true);
}

/**
 * A prompt's end as the attempt's outcome. `expected` is a canonical job's image count (fewer is a
 * failure in disguise); a workflow's has none.
 */
export async function endOutcome(config: BackendConfig, end: PromptEnd, ctx: { expected?: number; images: ImageStore; signal: AbortSignal }): Promise<Outcome> {
  if (end.kind === "interrupted") return failed("interrupted", "the prompt was interrupted on the backend", true);
  if (end.kind === "error") {
    const where = end.node ? `node ${end.node}${end.nodeType ? ` (${end.nodeType})` : ""}: ` : "";
    return nodeFailure(`${where}${end.message}`, ctx.expected !== undefined, end.node ? { id: end.node, type: end.nodeType || null } : undefined);
  }
  const list = ctx.expected === undefined ? end.outputs : end.outputs.slice(0, ctx.expected);
  if (list.length === 0) return failed("backend_failed", "the prompt ran but saved no image", ctx.expected !== undefined);
  if (ctx.expected !== undefined && list.length < ctx.expected) return failed("backend_failed", `the backend saved ${list.length} of ${ctx.expected} images`, true);
  const images: StoredImage[] = [];
  for (const [index, image] of list.entries()) {
    const stored = await fetchOutput(config, image, index, ctx);
    if (stored.kind === "failed") return stored;
    images.push(stored.image);
  }
  return { kind: "done", images };
}

async function fetchOutput(config: BackendConfig, image: ComfyOutput, index: number, ctx: { images: ImageStore; signal: AbortSignal }): Promise<{ kind: "stored"; image: StoredImage } | Extract<Outcome, { kind: "failed" }>> {
  const query = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder, type: "output" });
  try {
    const read = await withDeadline(
      VIEW_TIMEOUT_MS,
      async (signal) => {
        const res = await fetch(`${config.url}/view?${query}`, { headers: comfyHeaders(config), redirect: "manual", signal });
        if (res.status === 200) return { ok: true as const, bytes: new Uint8Array(await res.arrayBuffer()) };
        await res.body?.cancel();
        return { ok: false as const, status: res.status };
      },
      ctx.signal,
    );
    if (!read.ok) return { kind: "failed", failure: { code: "backend_failed", message: `the backend answered ${read.status} for a saved image`, retryable: true } };
    const bytes = read.bytes;
    if (!bytes.byteLength) return { kind: "failed", failure: { code: "backend_failed", message: "the backend sent an empty image", retryable: true } };
    return { kind: "stored", image: await ctx.images.put(index, [bytes], bytes.byteLength, image.node) };
  } catch (err) {
    return { kind: "failed", failure: { code: "backend_unavailable", message: "a saved image could not be fetched", detail: err instanceof Error ? err.message : String(err), retryable: true } };
  }
}

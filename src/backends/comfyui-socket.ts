/**
 * Following one prompt on ComfyUI's WebSocket (`/ws?clientId=`): its `progress` messages become the
 * job's progress, and the messages that end it (`execution_success`, `execution_error`,
 * `execution_interrupted`, `executing` with no node) say when to read its history. The socket only
 * says when to look; the history says what happened, so a dropped socket loses nothing.
 */
import type { BackendConfig } from "../config";
import { comfyHeaders } from "./comfyui-api";
import type { BackendPreview, BackendProgress } from "./types";
import { withDeadline } from "../lib/deadline";

const OPEN_TIMEOUT_MS = 10_000;

/** `changed`: ComfyUI's queue changed while the prompt had not started (it may have been taken out of it). */
export type SocketSignal = "ended" | "changed" | "closed" | "quiet";

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** server.py's binary frame: event type 1 (PREVIEW_IMAGE), then the format (1 JPEG, 2 PNG), then the image. */
const PREVIEW_FORMATS: Record<number, BackendPreview["content_type"]> = { 1: "image/jpeg", 2: "image/png" };

export function previewOf(frame: ArrayBuffer): BackendPreview | undefined {
  if (frame.byteLength <= 8) return undefined;
  const view = new DataView(frame);
  const content_type = view.getUint32(0) === 1 ? PREVIEW_FORMATS[view.getUint32(4)] : undefined;
  return content_type ? { content_type, image: new Uint8Array(frame, 8) } : undefined;
}

/** What the socket hands on as the prompt runs. */
export interface PromptListeners {
  onProgress?: (p: BackendProgress) => void;
  onPreview?: (p: BackendPreview) => void;
}

/**
 * A `progress` message as the job's figures: each sampler is an equal part of the whole (one per
 * sample); a node that is not one of them (an upscale model, a custom node) counts as the whole.
 */
export function promptProgress(data: Record<string, unknown>, samplers: readonly string[]): BackendProgress | undefined {
  const value = num(data.value);
  const max = num(data.max);
  if (value === undefined || max === undefined || max <= 0) return undefined;
  const node = typeof data.node === "string" || typeof data.node === "number" ? String(data.node) : undefined;
  const at = node === undefined ? -1 : samplers.indexOf(node);
  const part = Math.min(1, Math.max(0, value / max));
  const fraction = at < 0 ? part : (at + part) / samplers.length;
  return {
    fraction: Math.min(1, fraction),
    step: value,
    steps: max,
    eta_s: null,
    job: "",
    job_no: Math.max(0, at),
    job_count: Math.max(1, samplers.length),
    job_timestamp: "0",
    textinfo: null,
    ...(node !== undefined ? { node } : {}),
  };
}

/**
 * ComfyUI gives no estimate: the time left is the pace so far (from the first progress message)
 * carried over what remains. Null until the job has moved.
 */
export function etaFrom(first: { at: number; fraction: number }, now: { at: number; fraction: number }): number | null {
  const done = now.fraction - first.fraction;
  if (done <= 0 || now.at <= first.at) return null;
  return (((now.at - first.at) / done) * (1 - now.fraction)) / 1000;
}

export class PromptSocket {
  private signal: SocketSignal | undefined;
  private wake: (() => void) | undefined;
  private first: { at: number; fraction: number } | undefined;
  /** Whether a message of the prompt came: it left the queue, and queue changes say nothing of it any more. */
  private started = false;

  private constructor(
    private readonly ws: WebSocket,
    private promptId: string,
    private readonly samplers: readonly string[],
    private readonly listeners: PromptListeners,
  ) {
    ws.addEventListener("message", (e) => this.message(e.data));
    ws.addEventListener("close", () => this.raise("closed"));
    ws.addEventListener("error", () => this.raise("closed"));
  }

  /** Opens the socket under the attempt's client id; undefined when the server would not (then the history is polled). */
  static async open(config: BackendConfig, ids: { clientId: string; promptId: string }, samplers: readonly string[], listeners: PromptListeners, signal: AbortSignal): Promise<PromptSocket | undefined> {
    try {
      const res = await withDeadline(OPEN_TIMEOUT_MS, (bounded) => fetch(`${config.url}/ws?clientId=${encodeURIComponent(ids.clientId)}`, { headers: { ...comfyHeaders(config), upgrade: "websocket" }, signal: bounded }), signal);
      const ws = res.webSocket;
      if (!ws) {
        await res.body?.cancel();
        return undefined;
      }
      ws.accept();
      // Binary messages come as Blobs by default (websocket_standard_binary_type): previews are read at once.
      ws.binaryType = "arraybuffer";
      return new PromptSocket(ws, ids.promptId, samplers, listeners);
    } catch {
      return undefined;
    }
  }

  /** Waits up to `ms` for the prompt to end, the queue to change before it started, or the socket to close: "quiet" when none happened. */
  async wait(ms: number): Promise<SocketSignal> {
    if (this.signal) return this.take();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => (clearTimeout(timer), resolve());
    });
    this.wake = undefined;
    return this.take();
  }

  /** Follows the prompt under the id ComfyUI gave it (an older ComfyUI ignores the one sent). */
  follow(promptId: string): void {
    this.promptId = promptId;
  }

  get closed(): boolean {
    return this.ws.readyState !== WebSocket.OPEN;
  }

  close(): void {
    try {
      this.ws.close(1000, "done");
    } catch {
      // Already closed.
    }
  }

  /** "closed" stays raised; "ended" and "changed" are taken once. */
  private take(): SocketSignal {
    const s = this.signal ?? "quiet";
    if (s !== "closed") this.signal = undefined;
    return s;
  }

  private raise(s: SocketSignal): void {
    // An end already heard is not hidden by a later queue change.
    if (this.signal !== "closed" && !(s === "changed" && this.signal === "ended")) this.signal = s;
    this.wake?.();
  }

  private message(raw: unknown): void {
    // Binary frames are previews: the client id is the attempt's own, so they are this prompt's.
    if (raw instanceof ArrayBuffer) {
      const preview = this.started ? previewOf(raw) : undefined;
      if (preview) this.listeners.onPreview?.(preview);
      return;
    }
    if (typeof raw !== "string") return;
    let msg: Record<string, unknown>;
    try {
      msg = obj(JSON.parse(raw));
    } catch {
      return;
    }
    const data = obj(msg.data);
    // Sent to every client when the queue changes (queue_updated): a prompt still waiting may have
    // been deleted from it (a cancel), which its history and queue then show without waiting out the quiet.
    if (msg.type === "status" && !this.started) return this.raise("changed");
    if (data.prompt_id !== this.promptId) return;
    this.started = true;
    switch (msg.type) {
      case "progress": {
        const p = promptProgress(data, this.samplers);
        if (!p) return;
        const now = { at: Date.now(), fraction: p.fraction };
        this.first ??= now;
        this.listeners.onProgress?.({ ...p, eta_s: etaFrom(this.first, now) });
        return;
      }
      case "executing":
        if (data.node === null) this.raise("ended");
        return;
      case "execution_success":
      case "execution_error":
      case "execution_interrupted":
        this.raise("ended");
        return;
    }
  }
}

/**
 * ComfyUI's PromptQueue and its socket fan-out: prompts run one at a time in `number` order, each
 * leaving a history entry; `status` goes to every socket on each queue change, a prompt's execution
 * messages only to the socket of its `client_id`.
 */
import { OutputCache } from "./comfyui-cache";
import { ComfyFiles } from "./comfyui-files";
import { execute, type ExecutionResult } from "./comfyui-execute";
import { SERVER_FEATURES } from "./comfyui-lists";
import { encodePng } from "./png";
import type { Graph } from "./comfyui-validate";
import type { ServerSocket } from "./websocket";
import type { SimState } from "./state";

/** `[number, prompt_id, prompt, extra_data, outputs_to_execute]`, as ComfyUI lists and stores a prompt. */
export type QueueItem = [number, string, Graph, Record<string, unknown>, string[]];

export interface HistoryEntry {
  prompt: QueueItem;
  outputs: ExecutionResult["outputs"];
  status: { status_str: "success" | "error"; completed: boolean; messages: ExecutionResult["messages"] };
  meta: ExecutionResult["meta"];
}

/** execution.py's MAXIMUM_HISTORY_SIZE. */
const MAX_HISTORY = 10_000;

export class ComfyQueue {
  readonly files = new ComfyFiles();
  private readonly cache = new OutputCache();
  private pending: QueueItem[] = [];
  private running: { item: QueueItem; interrupted: boolean; lastNode: string | null } | undefined;
  private readonly history = new Map<string, HistoryEntry>();
  private readonly sockets = new Map<string, ServerSocket>();
  private next = 0;

  constructor(private readonly state: SimState) {}

  /** A new socket under `sid` (a reconnect replaces the old one), told the queue state at once. */
  connect(sid: string, socket: ServerSocket): void {
    this.sockets.get(sid)?.close();
    this.sockets.set(sid, socket);
    socket.onClose(() => {
      if (this.sockets.get(sid) === socket) this.sockets.delete(sid);
    });
    // A client's first message may offer its feature flags; the server answers with its own.
    let first = true;
    socket.onText((text) => {
      if (!first) return;
      first = false;
      try {
        if ((JSON.parse(text) as { type?: unknown }).type === "feature_flags") this.send("feature_flags", SERVER_FEATURES, sid);
      } catch {
        // Not JSON: ComfyUI logs it and carries on.
      }
    });
    this.send("status", { status: this.info(), sid }, sid);
    const r = this.running;
    // A client that reconnects mid-prompt learns which node runs, as ComfyUI tells it.
    if (r && r.item[3].client_id === sid && r.lastNode !== null) this.send("executing", { node: r.lastNode }, sid);
  }

  private send(type: string, data: Record<string, unknown>, sid?: string): void {
    if (this.state.faults("comfyui").comfySocketDown) {
      for (const s of this.sockets.values()) s.close();
      return;
    }
    const text = JSON.stringify({ type, data });
    if (sid === undefined) for (const s of this.sockets.values()) s.sendText(text);
    else this.sockets.get(sid)?.sendText(text);
  }

  /**
   * A sampling preview as server.py sends one: a binary frame of event type 1 (PREVIEW_IMAGE), image
   * format 2 (PNG), then the image, a small picture that brightens step by step.
   */
  private preview(sid: string, value: number, max: number): void {
    const level = Math.round((255 * value) / Math.max(1, max));
    this.sendPng(sid, encodePng(64, 64, () => [level, level, level]));
  }

  private sendPng(sid: string, png: Uint8Array): void {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(1, 0);
    head.writeUInt32BE(2, 4);
    this.sockets.get(sid)?.sendBinary(Buffer.concat([head, Buffer.from(png)]));
  }

  private updated(): void {
    this.send("status", { status: this.info() });
  }

  info() {
    return { exec_info: { queue_remaining: this.pending.length + (this.running ? 1 : 0) } };
  }

  /** Queues a validated prompt; `number` orders it (`front` puts it ahead of the rest). */
  put(promptId: string, graph: Graph, extraData: Record<string, unknown>, outputs: string[], opts: { number?: number; front?: boolean } = {}): number {
    let number = opts.number;
    if (number === undefined) {
      number = opts.front ? -this.next : this.next;
      this.next++;
    }
    this.state.stats.byPrompt[promptId] = (this.state.stats.byPrompt[promptId] ?? 0) + 1;
    this.pending.push([number, promptId, graph, extraData, outputs]);
    this.pending.sort((a, b) => a[0] - b[0]);
    this.updated();
    // Started on the next turn, as ComfyUI's worker thread takes it: the `/prompt` answer goes out first.
    setImmediate(() => this.pump());
    return number;
  }

  queue() {
    return { queue_running: this.running ? [this.running.item] : [], queue_pending: [...this.pending] };
  }

  delete(ids: unknown[]): void {
    const before = this.pending.length;
    this.pending = this.pending.filter((i) => !ids.includes(i[1]));
    if (this.pending.length !== before) this.updated();
  }

  clear(): void {
    this.pending = [];
    this.updated();
  }

  /** With a prompt id, only that prompt and only while it runs; without, whatever runs. */
  interrupt(promptId?: string): void {
    this.state.stats.interrupts++;
    if (this.running && (promptId === undefined || this.running.item[1] === promptId)) this.running.interrupted = true;
  }

  historyOf(promptId: string): Record<string, HistoryEntry> {
    const h = this.history.get(promptId);
    return h ? { [promptId]: structuredClone(h) } : {};
  }

  /** `GET /history?max_items&offset`: the newest `max_items` unless an offset is given. */
  historyAll(maxItems?: number, offset = -1): Record<string, HistoryEntry> {
    const entries = [...this.history.entries()];
    const from = offset < 0 && maxItems !== undefined ? entries.length - maxItems : offset;
    return Object.fromEntries(entries.slice(Math.max(0, from), maxItems !== undefined ? Math.max(0, from) + maxItems : undefined));
  }

  deleteHistory(ids: unknown[] | "all"): void {
    if (ids === "all") this.history.clear();
    else for (const id of ids) this.history.delete(String(id));
  }

  private pump(): void {
    if (this.running) return;
    const item = this.pending.shift();
    if (!item) return;
    const run = { item, interrupted: false, lastNode: null as string | null };
    this.running = run;
    this.updated();
    const clientId = typeof item[3].client_id === "string" ? item[3].client_id : undefined;
    void execute({
      state: this.state,
      kind: "comfyui",
      files: this.files,
      promptId: item[1],
      graph: item[2],
      outputs: item[4],
      extraData: item[3],
      emit: (event, data) => {
        if (event === "executing") run.lastNode = String(data.node);
        if (clientId === undefined) {
          // A prompt with no client: only execution_interrupted is sent, to everyone.
          if (event === "execution_interrupted") this.send(event, data);
          return;
        }
        this.send(event, data, clientId);
        if (event === "progress" && this.state.faults("comfyui").comfyPreviews) this.preview(clientId, Number(data.value), Number(data.max));
      },
      // Binary frames go only to the prompt's client (server.client_id), never broadcast.
      emitImage: (png) => {
        if (clientId !== undefined) this.sendPng(clientId, png);
      },
      interrupted: () => run.interrupted,
      cache: this.state.faults("comfyui").comfyCache ? this.cache : undefined,
    }).then((result) => {
      if (this.history.size >= MAX_HISTORY) this.history.delete(this.history.keys().next().value as string);
      this.history.set(item[1], { prompt: item, outputs: result.outputs, status: { status_str: result.success ? "success" : "error", completed: result.success, messages: result.messages }, meta: result.meta });
      this.running = undefined;
      this.updated();
      if (clientId !== undefined) this.send("executing", { node: null, prompt_id: item[1] }, clientId);
      this.pump();
    });
  }
}

/**
 * One tenant's ComfyUI state: its prompts (prompt id → run id, the queue numbers, which ended)
 * and its clients' WebSockets (the Hibernation API: an idle socket costs nothing). Each prompt's
 * job tells this object of its events (its `subscriber`); they are rendered for the sockets of the
 * prompt's `client_id` through the dialect's feed renderer. One object per tenant, named by the
 * tenant: no socket ever hears of another tenant's prompts.
 */
import { DurableObject } from "cloudflare:workers";
import { config } from "../src/config";
import { feedRenderer, type JobNotice, type JobPreview } from "../src/contracts/job-feed";
import { ACTIVE_PAGE_MAX, CLIENT_ID_HEADER, type ActivePage, type PromptState, type PromptTrackerRpc, type TrackedPrompt } from "../src/contracts/prompts";
import type { Env } from "../src/env";
import { alarmBy } from "./alarms";
import { HELD_SCHEMA, HeldEnds } from "./comfy-held-ends";
import { withFrames } from "./stored-frames";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS prompts (
  prompt_id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL UNIQUE,
  client_id TEXT,
  number INTEGER NOT NULL,
  state TEXT NOT NULL,
  node TEXT,
  created_at INTEGER NOT NULL,
  ended_at INTEGER
);
CREATE INDEX IF NOT EXISTS prompts_by_number ON prompts (number);
CREATE INDEX IF NOT EXISTS prompts_by_state ON prompts (state, number);
CREATE INDEX IF NOT EXISTS prompts_by_end ON prompts (ended_at);
${HELD_SCHEMA}`;

const DIALECT = "comfyui";
const TERMINAL_EVENTS = new Set(["job.succeeded", "job.failed", "job.canceled"]);
/** Ended prompts forgotten per alarm (their jobs are deleted after RETENTION_S); the alarm comes back for the rest. */
const FORGET_BATCH = 500;
/**
 * While a prompt is unfinished, the sockets hear the queue's length at least this often: ComfyUI
 * clients take a socket silent for 10 s for a dead one (@saintno/comfyui-sdk reconnects and fails
 * the calls under way), and a prompt may wait longer than that in a shared backend's line.
 */
const HEARTBEAT_MS = 4_000;

type Row = { prompt_id: string; run_id: string; client_id: string | null; number: number; state: PromptState; created_at: number; node: string | null };

const clientTag = (clientId: string): string => `client:${clientId}`;

export class ComfySocket extends DurableObject<Env> implements PromptTrackerRpc {
  private schemaReady = false;
  /**
   * The running prompts (by run id, never reused) whose clients have had a progress of them (see
   * FollowedJob.heard); lost with the instance, which then sends one more. Pruned at each alarm.
   */
  private readonly heard = new Set<string>();
  private readonly held = new HeldEnds(
    () => this.sql,
    (clientId, messages) => this.send(this.audience(clientId), messages),
  );

  /** Tables made at the first write: an object only read (an unknown prompt id) stores nothing. */
  private get sql(): SqlStorage {
    if (!this.schemaReady) {
      this.ctx.storage.sql.exec(SCHEMA);
      this.schemaReady = true;
    }
    return this.ctx.storage.sql;
  }

  private hasTables(): boolean {
    return this.schemaReady || this.ctx.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'prompts'").toArray().length > 0;
  }

  private rows(query: string, ...args: (string | number)[]): Row[] {
    return this.hasTables() ? this.sql.exec<Row>(query, ...args).toArray() : [];
  }

  // ---- prompts ----

  async reserve(p: { prompt_id: string; run_id: string; client_id: string | null }): Promise<{ ok: true; number: number } | { ok: false }> {
    const now = Date.now();
    if (this.rows("SELECT * FROM prompts WHERE prompt_id = ?", p.prompt_id).length) return { ok: false };
    const number = (this.sql.exec<{ n: number | null }>("SELECT MAX(number) AS n FROM prompts").one().n ?? 0) + 1;
    this.sql.exec("INSERT INTO prompts (prompt_id, run_id, client_id, number, state, created_at) VALUES (?, ?, ?, ?, 'queued', ?)", p.prompt_id, p.run_id, p.client_id, number, now);
    this.broadcastStatus();
    await this.scheduleAlarm();
    return { ok: true, number };
  }

  async drop(promptId: string): Promise<void> {
    if (this.hasTables()) this.sql.exec("DELETE FROM prompts WHERE prompt_id = ?", promptId);
  }

  async lookup(promptId: string): Promise<TrackedPrompt | null> {
    const row = this.rows("SELECT * FROM prompts WHERE prompt_id = ?", promptId)[0];
    return row ? tracked(row) : null;
  }

  async latest(limit: number): Promise<TrackedPrompt[]> {
    return this.rows("SELECT * FROM prompts ORDER BY number DESC LIMIT ?", limit).map(tracked);
  }

  async latestEnded(limit: number): Promise<TrackedPrompt[]> {
    return this.rows("SELECT * FROM prompts WHERE ended_at IS NOT NULL ORDER BY ended_at DESC, number DESC LIMIT ?", limit).map(tracked);
  }

  async forgetEnded(promptIds: string[] | "all"): Promise<void> {
    if (!this.hasTables()) return;
    if (promptIds === "all") this.sql.exec("DELETE FROM prompts WHERE state = 'ended'");
    else for (const id of promptIds) this.sql.exec("DELETE FROM prompts WHERE state = 'ended' AND prompt_id = ?", id);
  }

  /**
   * Keyset pages, one seek of `prompts_by_state` per state (merged here): a page reads its own rows,
   * never the ended ones kept for the history, however many; the counts read the same index.
   */
  async activePage(q: { after: number; limit: number; state?: "queued" | "running" }): Promise<ActivePage> {
    const limit = Math.max(0, Math.min(Math.floor(q.limit), ACTIVE_PAGE_MAX));
    const page = (state: PromptState) => this.rows("SELECT * FROM prompts WHERE state = ? AND number > ? ORDER BY number LIMIT ?", state, q.after, limit);
    const prompts = q.state ? page(q.state) : [...page("queued"), ...page("running")].sort((a, b) => a.number - b.number).slice(0, limit);
    const counts = this.hasTables() ? this.sql.exec<{ state: PromptState; n: number }>("SELECT state, COUNT(*) AS n FROM prompts WHERE state IN ('queued', 'running') GROUP BY state").toArray() : [];
    const count = (state: PromptState) => counts.find((c) => c.state === state)?.n ?? 0;
    return { ok: true, prompts: prompts.map(tracked), queued: count("queued"), running: count("running") };
  }

  /** One status to the sockets for the whole batch: each status makes every SDK call read GET /queue. */
  async settle(runIds: string[]): Promise<{ ok: true; settled: number } | { ok: false; code: "conflict"; message: string }> {
    if (runIds.length > ACTIVE_PAGE_MAX) return { ok: false, code: "conflict", message: `at most ${ACTIVE_PAGE_MAX} prompts are settled at once` };
    if (!this.hasTables() || !runIds.length) return { ok: true, settled: 0 };
    const now = Date.now();
    let settled = 0;
    for (const id of runIds) settled += this.sql.exec("UPDATE prompts SET state = 'ended', ended_at = ? WHERE run_id = ? AND state != 'ended' RETURNING run_id", now, id).toArray().length;
    if (!settled) return { ok: true, settled };
    this.held.release();
    await this.scheduleAlarm();
    this.broadcastStatus();
    return { ok: true, settled };
  }

  // ---- the one alarm: the sockets' heartbeat, and an ended prompt forgotten with its job after RETENTION_S ----

  /** Sets the alarm for the soonest of the next heartbeat (prompts unfinished, sockets open), the oldest ended prompt's forgetting and a held end's last moment. */
  private async scheduleAlarm(): Promise<void> {
    const oldest = this.sql.exec<{ at: number | null }>("SELECT MIN(ended_at) AS at FROM prompts WHERE ended_at IS NOT NULL").one().at;
    const forget = oldest === null ? Infinity : oldest + config.retentionMs(this.env);
    const beat = this.queueRemaining() > 0 && this.ctx.getWebSockets().length > 0 ? Date.now() + HEARTBEAT_MS : Infinity;
    const due = Math.min(forget, beat, this.held.due() ?? Infinity);
    if (due === Infinity) return;
    await alarmBy(this.ctx.storage, due);
  }

  override async alarm(): Promise<void> {
    if (!this.hasTables()) return;
    this.sql.exec(
      "DELETE FROM prompts WHERE prompt_id IN (SELECT prompt_id FROM prompts WHERE ended_at IS NOT NULL AND ended_at <= ? ORDER BY ended_at LIMIT ?)",
      Date.now() - config.retentionMs(this.env),
      FORGET_BATCH,
    );
    this.held.release();
    // A prompt that ended without its end notice (settled by a read of the queue, or forgotten).
    for (const runId of this.heard) if (!this.rows("SELECT * FROM prompts WHERE run_id = ? AND state != 'ended'", runId).length) this.heard.delete(runId);
    if (this.queueRemaining() > 0) this.broadcastStatus();
    await this.scheduleAlarm();
  }

  // ---- the jobs' news ----

  async jobNotice(notice: JobNotice): Promise<void> {
    const first = this.rows("SELECT * FROM prompts WHERE run_id = ?", notice.snapshot.job.id)[0];
    const renderer = feedRenderer(DIALECT);
    if (!first || !renderer) return;
    const { messages: rendered, closing, after, node, heard } = renderer.notice(notice, { id: first.prompt_id, node: first.node, alone: this.runsAlone(first), heard: this.heard.has(first.run_id) });
    const messages = await withFrames(this.env.IMAGES, notice.snapshot.output_keys, rendered);
    // Read again after the images: only this job's notices (one at a time) change its row, but it may be gone.
    const row = this.rows("SELECT * FROM prompts WHERE run_id = ?", notice.snapshot.job.id)[0];
    if (!row) return;
    const types = new Set(notice.events.map((e) => e.type));
    // Running from the first notice that says so: the one with job.started may have been lost (notices are best effort).
    const started = types.has("job.started") || notice.snapshot.job.status === "running";
    const state: PromptState = [...types].some((t) => TERMINAL_EVENTS.has(t)) ? "ended" : started && row.state === "queued" ? "running" : row.state;
    if (heard && state !== "ended") this.heard.add(row.run_id);
    else this.heard.delete(row.run_id);
    if (row.state !== "ended") this.sql.exec("UPDATE prompts SET state = ?, node = ?, ended_at = ? WHERE run_id = ?", state, node, state === "ended" ? Date.now() : null, row.run_id);
    this.send(this.audience(row.client_id), messages);
    // Marked ended first: this prompt no longer holds back another's end, nor its own.
    this.held.close(row, closing, after);
    if (state === "ended" && row.state !== "ended") {
      this.held.release();
      await this.scheduleAlarm();
    }
    if (state !== row.state) this.broadcastStatus();
  }

  /** A running prompt's preview, to the sockets of its client as ComfyUI sends one, while it runs alone (see `runsAlone`); nothing is stored. */
  async jobPreview(preview: JobPreview): Promise<void> {
    const row = this.rows("SELECT * FROM prompts WHERE run_id = ?", preview.run_id)[0];
    const frame = row && row.state !== "ended" && this.runsAlone(row) ? feedRenderer(DIALECT)?.preview?.(preview) : undefined;
    if (row && frame) this.send(this.audience(row.client_id), [frame]);
  }

  /**
   * No other prompt the sockets of `row`'s client hear of is running (of that client, or of none,
   * which every socket hears). ComfyUI runs one prompt at a time, so its clients take a progress or
   * a preview for their running prompt's (the SDK's CallWrapper does); Easel runs a client's prompts
   * side by side, and sends those only while one runs.
   */
  private runsAlone(row: Row): boolean {
    const q = "SELECT COUNT(*) AS n FROM prompts WHERE state = 'running' AND prompt_id != ? AND (client_id IS NULL OR client_id = ? OR ? IS NULL)";
    return this.sql.exec<{ n: number }>(q, row.prompt_id, row.client_id, row.client_id).one().n === 0;
  }

  // ---- sockets ----

  override async fetch(request: Request): Promise<Response> {
    const clientId = request.headers.get(CLIENT_ID_HEADER);
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket" || !clientId) return new Response("expected a WebSocket upgrade", { status: 426 });
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [clientTag(clientId)]);
    const renderer = feedRenderer(DIALECT);
    if (renderer) server.send(renderer.status(this.queueRemaining(), clientId));
    if (this.hasTables()) await this.scheduleAlarm();
    return new Response(null, { status: 101, webSocket: client });
  }

  /** ComfyUI's clients send nothing the server acts on. */
  override async webSocketMessage(): Promise<void> {}

  override async webSocketClose(ws: WebSocket): Promise<void> {
    try {
      ws.close(1000, "closed");
    } catch {
      // Already closed by the client.
    }
  }

  /** A prompt queued without a client id is news to every socket of the tenant, as ComfyUI broadcasts it. */
  private audience(clientId: string | null): WebSocket[] {
    return this.ctx.getWebSockets(clientId ? clientTag(clientId) : undefined);
  }

  private queueRemaining(): number {
    return this.hasTables() ? this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM prompts WHERE state IN ('queued', 'running')").one().n : 0;
  }

  /** Every socket of the tenant hears the queue's length change, as ComfyUI tells every client. */
  private broadcastStatus(): void {
    const renderer = feedRenderer(DIALECT);
    if (renderer) this.send(this.ctx.getWebSockets(), [renderer.status(this.queueRemaining())]);
  }

  private send(sockets: WebSocket[], messages: (string | Uint8Array)[]): void {
    for (const ws of sockets) {
      try {
        for (const m of messages) ws.send(m);
      } catch {
        // A socket closing as we send: its client reconnects and reads /history.
      }
    }
  }
}

const tracked = ({ prompt_id, run_id, client_id, number, state, created_at }: Row): TrackedPrompt => ({ prompt_id, run_id, client_id, number, state, created_at });

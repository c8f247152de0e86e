/**
 * The job ledger: every write to the job's SQLite tables (tables.ts). Synchronous and free of I/O;
 * each state change is one transaction with the event and rows it implies, so a restart finds the
 * job in one state or the next, never between. The only writer of job state.
 */
import type { BackendProgress } from "../../src/backends/types";
import type { StoredJobInput } from "../../src/jobs/spec";
import { randomId, timingSafeEqual } from "../../src/lib/crypto";
import type { JobError, JobEvent, JobStatus, WebhookEventType } from "../../src/schemas/job";
import { deadlineOnStart } from "./time-limits";
import { POLL_MIN_MS, SCHEMA, parseInput, type AttemptRow, type DeliveryRow, type JobRow, type OutboxRow, type ProgressRow, type StoredOutput, type Webhook } from "./tables";

export const TERMINAL: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "canceled"]);

/** A job's delivery log keeps this many tries at most once redeliveries are asked (see requeueTerminal). */
export const MAX_DELIVERY_ROWS = 100;
/** The only transitions a job can make; anything else is refused. */
const TRANSITIONS: Record<JobStatus, readonly JobStatus[]> = {
  queued: ["running", "failed", "canceled"],
  running: ["succeeded", "failed", "canceled"],
  succeeded: [],
  failed: [],
  canceled: [],
};

export const canTransition = (from: JobStatus, to: JobStatus): boolean => TRANSITIONS[from].includes(to);

/** The table a write statement changes (every write names it first). */
const WRITTEN_TABLE = /^(?:INSERT INTO|UPDATE|DELETE FROM) (\w+)/;

const iso = (ms: number): string => new Date(ms).toISOString();

export class JobLedger {
  private schemaReady = false;
  /**
   * Reads as last made (the job row, the current attempt, the outbox's head), each kept under its
   * table's name until that table is next written: every write goes through this class. A step
   * repeats the same few reads dozens of times, and each is a statement through the runtime.
   */
  private readonly reads = new Map<string, unknown>();

  /** `onEvent` is told of every event written (long-polls wait on it). */
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly onEvent: () => void,
  ) {}

  /**
   * The object's SQLite, its tables made at first use rather than in the constructor: reading an
   * id that has no job (a GET of an unknown run id) leaves the object without storage.
   */
  private get sql(): SqlStorage {
    if (!this.schemaReady) {
      this.storage.sql.exec(SCHEMA);
      // A job's outbox made before bodies could live in R2 (a deploy with jobs in flight) gains the column.
      if (!this.storage.sql.exec<{ name: string }>("PRAGMA table_info(outbox)").toArray().some((c) => c.name === "text_key")) {
        this.storage.sql.exec("ALTER TABLE outbox ADD COLUMN text_key TEXT");
      }
      this.schemaReady = true;
    }
    return this.storage.sql;
  }

  /** Runs several writes as one transaction. */
  transaction(writes: () => void): void {
    try {
      this.storage.transactionSync(writes);
    } catch (err) {
      // Rolled back: a read inside it may show writes that are gone.
      this.reads.clear();
      throw err;
    }
  }

  /** Every write goes through here: the next read of what it wrote goes to SQLite. */
  private write(query: string, ...bindings: SqlStorageValue[]): void {
    this.sql.exec(query, ...bindings);
    const table = WRITTEN_TABLE.exec(query)?.[1];
    for (const key of this.reads.keys()) if (table === undefined || key.split(":")[0] === table) this.reads.delete(key);
  }

  /** A read of `key`'s table ("table" or "table:what") kept until that table is written; frozen, as every caller shares it. */
  private cached<T>(key: string, read: () => T): T {
    if (this.reads.has(key)) return this.reads.get(key) as T;
    const value = read();
    if (typeof value === "object" && value !== null) Object.freeze(value);
    this.reads.set(key, value);
    return value;
  }

  // ---- reads ----

  /** The job, if this object holds one; an object without one is not given tables by being read. */
  row(): Readonly<JobRow> | undefined {
    if (!this.schemaReady && !this.reads.has("job") && !this.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'job'").toArray().length) return undefined;
    return this.cached("job", () => this.sql.exec<JobRow>("SELECT * FROM job LIMIT 1").toArray()[0]);
  }

  mustRow(): Readonly<JobRow> {
    const row = this.row();
    if (!row) throw new Error("job row missing");
    return row;
  }

  /** The job if it belongs to `tenant`; another tenant's job does not exist for them. */
  owned(tenant: string): Readonly<JobRow> | undefined {
    const row = this.row();
    return row && timingSafeEqual(row.tenant, tenant) ? row : undefined;
  }

  currentAttempt(): Readonly<AttemptRow> | undefined {
    return this.cached("attempts", () => this.attempts("WHERE state IN ('running', 'pending') ORDER BY n DESC LIMIT 1")[0]);
  }

  attempt(n: number): AttemptRow | undefined {
    return this.attempts("WHERE n = ?", n)[0];
  }

  private attempts(where: string, ...bindings: SqlStorageValue[]): AttemptRow[] {
    return this.sql.exec<AttemptRow>(`SELECT n, backend, state, external_id, poll_at, poll_delay, token, started_at FROM attempts ${where}`, ...bindings).toArray();
  }

  nextAttemptNumber(): number {
    return (this.sql.exec<{ n: number | null }>("SELECT MAX(n) AS n FROM attempts").one().n ?? 0) + 1;
  }

  lastAttemptError(): string | undefined {
    return this.sql.exec<{ error: string | null }>("SELECT error FROM attempts WHERE error IS NOT NULL ORDER BY n DESC LIMIT 1").toArray()[0]?.error ?? undefined;
  }

  /** The attempts that failed since the job's last retry (their `attempt.failed` events): on which backend, with what code. */
  failures(): { backend: string; code: string }[] {
    return this.sql
      .exec<{ data: string }>("SELECT data FROM events WHERE type = 'attempt.failed' AND seq > (SELECT COALESCE(MAX(seq), 0) FROM events WHERE type = 'job.retried')")
      .toArray()
      .map((e) => {
        const data = JSON.parse(e.data) as { backend?: unknown; code?: unknown };
        return { backend: String(data.backend ?? ""), code: String(data.code ?? "") };
      });
  }

  eventsAfter(seq: number): JobEvent[] {
    return this.sql
      .exec<{ seq: number; type: string; at: number; data: string }>("SELECT seq, type, at, data FROM events WHERE seq > ? ORDER BY seq", seq)
      .toArray()
      .map((e) => ({ seq: e.seq, type: e.type, at: iso(e.at), data: JSON.parse(e.data) as Record<string, unknown> }));
  }

  storedProgress(): { attempt: number; progress: BackendProgress } | undefined {
    const row = this.progressRow();
    return row ? { attempt: row.attempt, progress: JSON.parse(row.data) as BackendProgress } : undefined;
  }

  private progressRow(): ProgressRow | undefined {
    return this.sql.exec<ProgressRow>("SELECT attempt, data, event_data, event_at FROM progress LIMIT 1").toArray()[0];
  }

  /** The first webhook event not yet sent or given up: events go out in order, one at a time. */
  outboxHead(): Readonly<OutboxRow> | undefined {
    return this.cached("outbox", () => this.sql.exec<OutboxRow>("SELECT event_id, type, url, body, slots, text_key, attempts, next_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1").toArray()[0]);
  }

  deliveryLog(): DeliveryRow[] {
    return this.sql.exec<DeliveryRow>("SELECT * FROM deliveries ORDER BY id").toArray();
  }

  // ---- the job's state ----

  create(input: StoredJobInput, now: number): void {
    this.transaction(() => {
      this.write(
        "INSERT INTO job (id, tenant, status, input, created_at, deadline_at, dispatch_at) VALUES (?, ?, 'queued', ?, ?, ?, ?)",
        input.id,
        input.tenant,
        JSON.stringify(input),
        now,
        // Counted from submission, queue time included: a job not ended by then fails with `timeout`.
        now + input.timeout_s * 1000,
        now,
      );
      this.event("job.queued", { type: input.spec.type, backend: input.backend ?? null }, now);
    });
  }

  /** queued → running, within the caller's transaction; a run limit counts from here (time-limits.ts). */
  start(now: number, webhook: Webhook | null): void {
    const row = this.mustRow();
    this.write("UPDATE job SET status = 'running', started_at = ?, deadline_at = ? WHERE id = ?", now, deadlineOnStart(parseInput(row), row.deadline_at, now), row.id);
    this.event("job.started", {}, now);
    if (webhook) this.enqueueWebhook("job.started", webhook, now);
  }

  /** Ends the job, within the caller's transaction: open attempts are canceled, live figures dropped. */
  end(status: "succeeded" | "failed" | "canceled", now: number, error: JobError | null, outputs: StoredOutput[], webhook: Webhook | null): void {
    this.write(
      "UPDATE job SET status = ?, completed_at = ?, error = ?, output = ?, dispatch_at = NULL, waiting_on = NULL WHERE id = ?",
      status,
      now,
      error ? JSON.stringify(error) : null,
      JSON.stringify(outputs),
      this.mustRow().id,
    );
    this.write("UPDATE attempts SET state = 'canceled', ended_at = ? WHERE state IN ('running', 'pending')", now);
    this.write("DELETE FROM progress");
    this.event(`job.${status}`, error ? { error } : { outputs: outputs.length }, now);
    if (webhook) this.enqueueWebhook(`job.${status}`, webhook, now);
  }

  /** failed → queued (RunPod's `/retry`): a fresh deadline (its run limit set again at the next start) and every backend to try again. */
  retry(now: number): void {
    const row = this.mustRow();
    this.transaction(() => {
      this.write(
        "UPDATE job SET status = 'queued', started_at = NULL, completed_at = NULL, backend = NULL, output = '[]', error = NULL, deadline_at = ?, dispatch_at = ?, tried = '[]', waiting_on = NULL WHERE id = ?",
        now + parseInput(row).timeout_s * 1000,
        now,
        row.id,
      );
      this.event("job.retried", {}, now);
    });
  }

  /** The lines the job waits in for a slot, and when it looks for one again (null: not before it is woken). */
  setWaiting(lines: readonly string[], dispatchAt?: number | null): void {
    const id = this.mustRow().id;
    const waitingOn = lines.length ? JSON.stringify([...new Set(lines)]) : null;
    if (dispatchAt === undefined) this.write("UPDATE job SET waiting_on = ? WHERE id = ?", waitingOn, id);
    else this.write("UPDATE job SET dispatch_at = ?, waiting_on = ? WHERE id = ?", dispatchAt, waitingOn, id);
  }

  /** Within the caller's transaction: the job dispatches again at `at`, `tried` now also excluded. */
  redispatch(at: number, tried: Set<string>): void {
    this.write("UPDATE job SET dispatch_at = ?, tried = ? WHERE id = ?", at, JSON.stringify([...tried]), this.mustRow().id);
  }

  // ---- attempts ----

  /** Within the caller's transaction: a new attempt, running on `backend`, starting from no figures. */
  beginAttempt(n: number, backend: string, token: string, now: number): void {
    this.write("DELETE FROM progress");
    this.write("INSERT INTO attempts (n, backend, state, token, started_at) VALUES (?, ?, 'running', ?, ?)", n, backend, token, now);
    this.write("UPDATE job SET dispatch_at = NULL, waiting_on = NULL, backend = ? WHERE id = ?", backend, this.mustRow().id);
    this.event("attempt.started", { attempt: n, backend }, now);
  }

  /** The backend took the attempt and will be asked for its status (or call back). */
  submitted(n: number, backend: string, externalId: string, pollAfterMs: number, now: number): void {
    this.transaction(() => {
      this.write("UPDATE attempts SET state = 'pending', external_id = ?, poll_at = ?, poll_delay = ? WHERE n = ?", externalId, now + pollAfterMs, Math.max(POLL_MIN_MS, pollAfterMs), n);
      this.event("attempt.submitted", { attempt: n, backend, external_id: externalId }, now);
    });
  }

  setExternalId(n: number, externalId: string): void {
    this.write("UPDATE attempts SET external_id = ? WHERE n = ?", externalId, n);
  }

  /** The next status call, `delay` from now. */
  pollLater(n: number, delay: number): void {
    this.write("UPDATE attempts SET poll_at = ?, poll_delay = ? WHERE n = ?", Date.now() + delay, delay, n);
  }

  /** A lost call that may still run: logged once, `until` the latest its wait can end (kept in poll_at). */
  lostWaiting(n: number, until: number, data: Record<string, unknown>, at: number): void {
    this.transaction(() => {
      this.event("attempt.lost", data, at);
      this.write("UPDATE attempts SET poll_at = ? WHERE n = ?", until, n);
    });
  }

  /** Within the caller's transaction. */
  endAttempt(n: number, state: "done" | "failed", error: string | null): void {
    this.write("UPDATE attempts SET state = ?, ended_at = ?, error = ? WHERE n = ?", state, Date.now(), error, n);
  }

  /**
   * Keeps the latest figures of a running attempt; a change becomes a `job.progress` event unless
   * the last one is under `gapMs` old (the next reading catches up). Answers whether it did.
   */
  recordProgress(n: number, p: BackendProgress, shown: Record<string, unknown>, gapMs: number): boolean {
    const now = Date.now();
    const text = JSON.stringify(shown);
    const prev = this.progressRow();
    const due = prev?.attempt !== n || (prev.event_data !== text && (prev.event_at === null || now - prev.event_at >= gapMs));
    this.transaction(() => {
      this.write("DELETE FROM progress WHERE attempt != ?", n);
      this.write(
        "INSERT INTO progress (attempt, data, event_data, event_at) VALUES (?, ?, ?, ?) ON CONFLICT (attempt) DO UPDATE SET data = excluded.data, event_data = excluded.event_data, event_at = excluded.event_at",
        n,
        JSON.stringify(p),
        due ? text : (prev?.event_data ?? null),
        due ? now : (prev?.event_at ?? null),
      );
      if (due) this.event("job.progress", shown, now);
    });
    return due;
  }

  // ---- events and the outbox ----

  event(type: string, data: Record<string, unknown>, at: number): void {
    this.write("INSERT INTO events (type, at, data) VALUES (?, ?, ?)", type, at, JSON.stringify(data));
    this.onEvent();
  }

  private enqueueWebhook(type: WebhookEventType, webhook: Webhook, now: number): void {
    this.write(
      "INSERT INTO outbox (event_id, type, url, body, slots, text_key, next_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
      randomId("msg"),
      type,
      webhook.url,
      webhook.textKey === undefined ? webhook.body.text : "",
      JSON.stringify(webhook.body.slots),
      webhook.textKey ?? null,
      now,
    );
  }

  /**
   * A `job.progress` webhook, queued behind the others. Progress not yet tried is superseded by
   * it and goes (but for the head of the line, whose try may be out): a receiver that is slow or
   * down holds at most two.
   */
  queueProgressWebhook(webhook: Webhook, now: number): void {
    this.transaction(() => {
      this.write(
        "DELETE FROM outbox WHERE state = 'pending' AND type = 'job.progress' AND attempts = 0 AND seq > (SELECT MIN(seq) FROM outbox WHERE state = 'pending')",
      );
      this.enqueueWebhook("job.progress", webhook, now);
    });
  }

  /** Whether `head`, a `job.progress` webhook, has an event behind it: then it is old news and goes unsent. */
  dropIfSuperseded(head: OutboxRow): boolean {
    if (head.type !== "job.progress") return false;
    const later = this.sql.exec("SELECT 1 FROM outbox WHERE state = 'pending' AND event_id != ? LIMIT 1", head.event_id).toArray().length > 0;
    if (later) this.write("DELETE FROM outbox WHERE event_id = ?", head.event_id);
    return later;
  }

  pendingWebhooks(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'").one().n;
  }

  /** One delivery attempt of `head` and what it left: the next try (`nextAt`) or its end. */
  delivered(head: OutboxRow, d: { attempt: number; startedAt: number; state: string; nextAt: number | null; status_code: number | null; error: string | null; duration_ms: number; response_body: string | null }): void {
    this.transaction(() => {
      this.write("UPDATE outbox SET attempts = ?, next_at = ?, state = ? WHERE event_id = ?", d.attempt, d.nextAt, d.state, head.event_id);
      this.write(
        "INSERT INTO deliveries (event_id, type, attempt, url, started_at, status_code, error, duration_ms, response_body, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        head.event_id,
        head.type,
        d.attempt,
        head.url,
        d.startedAt,
        d.status_code,
        d.error,
        d.duration_ms,
        d.response_body,
        d.nextAt,
      );
      // A progress webhook is one of many: only the latest tries of them stay in the log.
      if (head.type === "job.progress") {
        this.write("DELETE FROM deliveries WHERE type = 'job.progress' AND id <= (SELECT id FROM deliveries WHERE type = 'job.progress' ORDER BY id DESC LIMIT 1 OFFSET ?)", MAX_DELIVERY_ROWS - 1);
      }
      // A delivery that ends without a 2xx is shown in the job's own log, not only in the deliveries
      // (a progress webhook's, tried once and superseded by the next, only there).
      else if (d.state === "failed" || d.state === "gone") {
        this.event(`webhook.${d.state}`, { event_id: head.event_id, type: head.type, attempts: d.attempt, status_code: d.status_code }, Date.now());
      }
    });
  }

  /**
   * Pending `job.started` events that have failed a first try and have a terminal event behind them
   * go behind it (see outbox.ts): queued again at the end of the line, under the same event id, with
   * their tries and retry schedule kept. Nothing is dropped.
   */
  deferStarted(): void {
    const stale = this.cached("outbox:stale", () =>
      this.sql
        .exec<OutboxRow>(
          `SELECT event_id, type, url, body, slots, text_key, attempts, next_at FROM outbox o WHERE state = 'pending' AND type = 'job.started' AND attempts > 0
           AND EXISTS (SELECT 1 FROM outbox t WHERE t.seq > o.seq AND t.type IN ('job.succeeded', 'job.failed', 'job.canceled'))`,
        )
        .toArray(),
    );
    if (!stale.length) return;
    this.transaction(() => {
      for (const e of stale) {
        this.write("DELETE FROM outbox WHERE event_id = ?", e.event_id);
        this.write(
          "INSERT INTO outbox (event_id, type, url, body, slots, text_key, attempts, next_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
          e.event_id,
          e.type,
          e.url,
          e.body,
          e.slots,
          e.text_key,
          e.attempts,
          e.next_at,
        );
        this.event("webhook.deferred", { event_id: e.event_id, type: "job.started" }, Date.now());
      }
    });
  }

  /**
   * Whether this read of a stream takes the output of the job's end at `endedAt`: the first read
   * after each end does, the reads after find nothing new. Its table is made at first use, as
   * few jobs are read as a stream.
   */
  takeStreamed(endedAt: number): boolean {
    this.sql.exec("CREATE TABLE IF NOT EXISTS streamed (ended_at INTEGER PRIMARY KEY)");
    if (this.sql.exec("SELECT 1 FROM streamed WHERE ended_at = ?", endedAt).toArray().length) return false;
    this.write("INSERT INTO streamed (ended_at) VALUES (?)", endedAt);
    return true;
  }

  /** The terminal event queued again, due now; undefined when the job has no webhook. */
  requeueTerminal(): string | undefined {
    const out = this.sql
      .exec<{ event_id: string }>("SELECT event_id FROM outbox WHERE type IN ('job.succeeded', 'job.failed', 'job.canceled') ORDER BY seq DESC LIMIT 1")
      .toArray()[0];
    if (!out) return undefined;
    this.transaction(() => {
      this.write("UPDATE outbox SET state = 'pending', next_at = ? WHERE event_id = ?", Date.now(), out.event_id);
      // Each redelivery adds to the log, as often as a client asks: only the latest tries stay (a
      // retry schedule's own are far fewer).
      this.write("DELETE FROM deliveries WHERE id <= (SELECT id FROM deliveries ORDER BY id DESC LIMIT 1 OFFSET ?)", MAX_DELIVERY_ROWS - 1);
    });
    return out.event_id;
  }

  /** After all of the object's storage was deleted: the tables are made again at next use. */
  forget(): void {
    this.schemaReady = false;
    this.reads.clear();
  }
}

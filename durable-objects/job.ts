import { DurableObject } from "cloudflare:workers";
import { adapterFor } from "../src/backends";
import { fittingBackends } from "../src/backends/models";
import type { BackendAdapter, BackendFailure, BackendProgress, CallbackSource, Outcome } from "../src/backends/types";
import { config, type BackendConfig } from "../src/config";
import { renderOutputManifest } from "../src/dialects/manifests";
import { renderWebhookBody } from "../src/dialects/webhooks";
import type { Env } from "../src/env";
import { callbackToken } from "../src/jobs/callback-token";
import type { CallbackBody } from "../src/jobs/client";
import { textStream } from "../src/lib/json-stream";
import type { JobSnapshot, Result } from "../src/jobs/results";
import { CreateJobSchema, type CreateJob, type StoredJobInput } from "../src/jobs/spec";
import { randomId, timingSafeEqual } from "../src/lib/crypto";
import { redact } from "../src/lib/redact";
import type { Delivery, Job, JobError, JobEvent, JobProgress, JobStatus, WebhookEventType } from "../src/schemas/job";
import { getImageBytes, OutputStore, type StoredImage } from "../src/storage/images";
import { signedOutputUrl } from "../src/storage/links";
import { deletePrefixes } from "../src/storage/purge";
import { putS3Object, s3ImageKey, s3ManifestKey } from "../src/storage/s3-output";
import { attemptDelivery, nextDelayMs } from "../src/webhooks/deliver";
import { serializeWithSlots, slottedStream, type SlottedBody } from "../src/webhooks/body-slots";
import { tenantStub } from "../src/tenants";
import { SLOT_LEASE_MS, type AcquireResult, type AttemptOutcome, type ReleaseOutcome } from "./backend-scheduler";
import { checkLostCall } from "./lost-call";

/**
 * While a synchronous call is in flight the alarm beats this often: it enforces the deadline
 * during the call, renews the slot, and after a restart finds the call lost within this time.
 */
const HEARTBEAT_MS = 5_000;
/** How often a job renews the slot its generation occupies (well inside SLOT_LEASE_MS). */
const RENEW_MS = 20_000;
/** A job waiting for a backend slot checks again this often, in case a wake-up was lost. */
const REQUEUE_CHECK_MS = 15_000;
const POLL_MIN_MS = 1_000;
const POLL_MAX_MS = 15_000;
const MAX_DELIVERIES_PER_ALARM = 10;
/** A purge that failed (the tenant's object or R2 unreachable) is tried again this much later. */
const PURGE_RETRY_MS = 60_000;
/**
 * While a synchronous call runs, its backend is asked for progress this often, then less often
 * once the call is long: all readings of one call happen in one invocation, whose subrequests are
 * capped (1,000 on older Workers Paid plans), so a 30-minute call stays near 290 readings (580 subrequests).
 */
const PROGRESS_READ_MS = 1_000;
const PROGRESS_READ_SLOW_MS = 10_000;
const PROGRESS_FAST_FOR_MS = 120_000;
/** `job.progress` events are at least this far apart: at most 2 in any second. */
const PROGRESS_EVENT_GAP_MS = 550;
/** A preview image read for a client is reused for this long, so polling clients cost the backend little. */
const PREVIEW_TTL_MS = 500;
const PROGRESS_TIMEOUT_MS = 3_000;
/**
 * Work due this soon counts as due now. An alarm can fire a hair before its time (and the clock a
 * Worker reads is coarse); skipping such work would re-set the alarm to the very time being run,
 * which the runtime then drops when the handler returns.
 */
const DUE_SLACK_MS = 250;
const dueBy = (t: number | null): boolean => t !== null && t <= Date.now() + DUE_SLACK_MS;

const TERMINAL: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "canceled"]);
/** The only transitions a job can make; anything else is refused. */
const TRANSITIONS: Record<JobStatus, readonly JobStatus[]> = {
  queued: ["running", "failed", "canceled"],
  running: ["succeeded", "failed", "canceled"],
  succeeded: [],
  failed: [],
  canceled: [],
};

export const canTransition = (from: JobStatus, to: JobStatus): boolean => TRANSITIONS[from].includes(to);

type JobRow = {
  id: string;
  tenant: string;
  status: JobStatus;
  input: string;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  backend: string | null;
  output: string;
  error: string | null;
  deadline_at: number;
  dispatch_at: number | null;
  tried: string;
  waiting_on: string | null;
};

type AttemptRow = {
  n: number;
  backend: string;
  state: "running" | "pending" | "done" | "failed" | "canceled";
  external_id: string | null;
  poll_at: number | null;
  poll_delay: number;
  token: string;
  started_at: number;
};

type ProgressRow = { attempt: number; data: string; event_data: string | null; event_at: number | null };

type OutboxRow = { event_id: string; type: WebhookEventType; url: string; body: string; slots: string; attempts: number; next_at: number | null };

type StoredOutput = StoredImage & { seed: number | null };

/** Image n of a batch has seed + n, as A1111 numbers them; an upscale has no seed. */
const seedOf = (input: StoredJobInput, i: number): number | null => (input.spec.type === "upscale" ? null : input.spec.seed + i);

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS job (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, status TEXT NOT NULL, input TEXT NOT NULL,
    created_at INTEGER NOT NULL, started_at INTEGER, completed_at INTEGER, backend TEXT,
    output TEXT NOT NULL DEFAULT '[]', error TEXT, deadline_at INTEGER NOT NULL,
    dispatch_at INTEGER, tried TEXT NOT NULL DEFAULT '[]', waiting_on TEXT);
  CREATE TABLE IF NOT EXISTS progress (attempt INTEGER PRIMARY KEY, data TEXT NOT NULL, event_data TEXT, event_at INTEGER);
  CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, at INTEGER NOT NULL, data TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS attempts (
    n INTEGER PRIMARY KEY, backend TEXT NOT NULL, state TEXT NOT NULL, external_id TEXT,
    poll_at INTEGER, poll_delay INTEGER NOT NULL DEFAULT ${POLL_MIN_MS}, token TEXT NOT NULL,
    started_at INTEGER NOT NULL, ended_at INTEGER, error TEXT);
  CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, url TEXT NOT NULL,
    body TEXT NOT NULL, slots TEXT NOT NULL DEFAULT '[]', attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER, state TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, type TEXT NOT NULL, attempt INTEGER NOT NULL,
    url TEXT NOT NULL, started_at INTEGER NOT NULL, status_code INTEGER, error TEXT, duration_ms INTEGER NOT NULL,
    response_body TEXT, next_attempt_at INTEGER);
`;

/**
 * One job: the single source of truth for its state machine, event log, backend attempts and
 * webhook outbox. Every step runs through `step`, which the one alarm backs, so a restart loses nothing.
 */
export class JobObject extends DurableObject<Env> {
  private schemaReady = false;
  /** The attempt whose backend call this instance has in flight, if any. */
  private inflight: number | undefined;
  /** The backend whose scheduler granted this job a slot from its line, for the next step (see `wake`). */
  private grantedBy: string | undefined;
  /** The attempt whose slot went back as soon as its backend answered (see `callBackend`). */
  private slotReturned: number | undefined;
  /** When this instance last renewed the current attempt's slot. */
  private renewedAt = 0;
  /** The delivery loop under way, if any. */
  private delivering: Promise<void> | undefined;
  /** The last step queued (see `step`): steps run one after another. */
  private stepping: Promise<void> = Promise.resolve();
  private readonly waiters = new Set<() => void>();
  /** No purge before this (see `purgeIfDue`): a failed one waits before it is tried again. */
  private purgeRetryAt = 0;
  /** The last preview image read for a client (kept in memory only: images stay out of storage). */
  private preview: { attempt: number; at: number; image: string | null } | undefined;

  /**
   * The object's SQLite, its tables made at first use rather than in the constructor: an object
   * warmed ahead of its job (see `warm`) touches no storage, so one whose job never comes leaves nothing.
   */
  private get sql(): SqlStorage {
    if (!this.schemaReady) {
      this.ctx.storage.sql.exec(SCHEMA);
      this.schemaReady = true;
    }
    return this.ctx.storage.sql;
  }

  // ---- RPC: reads ----

  /**
   * Brings the object into being ahead of its job, so the submit that names it does not wait for
   * that (the bulk of a new object's cost under `wrangler dev`). Touches no storage.
   */
  warm(): boolean {
    return true;
  }

  /** Creates the job once; a second call with the same id answers the existing job. */
  async create(raw: CreateJob): Promise<{ snapshot: JobSnapshot; created: boolean }> {
    const existing = this.row();
    if (existing) return { snapshot: await this.snapshot(existing), created: false };
    const input = CreateJobSchema.parse(raw);
    const now = input.created_at ?? Date.now();
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
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
    await this.reschedule();
    // The answer shows the job as created; its dispatch starts after.
    const snapshot = await this.snapshot(this.mustRow());
    this.kick();
    return { snapshot, created: true };
  }

  /** `full`: with the large pass-through fields a dialect echoes in a finished job's answer (read from R2). */
  async get(tenant: string, opts: { full?: boolean } = {}): Promise<Result<{ snapshot: JobSnapshot }>> {
    const row = this.owned(tenant);
    if (!row) return notFound();
    return { ok: true, snapshot: await this.snapshot(row, opts) };
  }

  async events(tenant: string, afterSeq = 0): Promise<Result<{ events: JobEvent[]; terminal: boolean }>> {
    const row = this.owned(tenant);
    if (!row) return notFound();
    return { ok: true, events: this.eventsAfter(afterSeq), terminal: TERMINAL.has(row.status) };
  }

  /**
   * Long-poll: answers as soon as there are events after `afterSeq` or the job has ended, or
   * when `timeoutMs` passes. Synchronous dialects and Server-Sent Events wait on this.
   */
  async waitForChange(tenant: string, afterSeq: number, timeoutMs: number, opts: { full?: boolean } = {}): Promise<Result<{ events: JobEvent[]; snapshot: JobSnapshot; terminal: boolean }>> {
    const deadline = Date.now() + Math.min(timeoutMs, 60_000);
    for (;;) {
      const row = this.owned(tenant);
      if (!row) return notFound();
      const events = this.eventsAfter(afterSeq);
      const terminal = TERMINAL.has(row.status);
      const left = deadline - Date.now();
      if (events.length || terminal || left <= 0) return { ok: true, events, snapshot: await this.snapshot(row, opts), terminal };
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
  }

  async deliveries(tenant: string): Promise<Result<{ deliveries: Delivery[] }>> {
    if (!this.owned(tenant)) return notFound();
    const rows = this.sql
      .exec<{ event_id: string; type: string; attempt: number; url: string; started_at: number; status_code: number | null; error: string | null; duration_ms: number; response_body: string | null; next_attempt_at: number | null }>(
        "SELECT * FROM deliveries ORDER BY id",
      )
      .toArray();
    return {
      ok: true,
      deliveries: rows.map((d) => ({
        event_id: d.event_id,
        type: d.type,
        attempt: d.attempt,
        url: d.url,
        started_at: iso(d.started_at),
        status_code: d.status_code,
        error: d.error,
        duration_ms: d.duration_ms,
        response_body: d.response_body,
        next_attempt_at: d.next_attempt_at === null ? null : iso(d.next_attempt_at),
      })),
    };
  }

  /**
   * The running job's live figures as the backend last reported them, and its preview image when
   * `image` is asked for (read from the backend at most every PREVIEW_TTL_MS). Null figures
   * before the job runs and after it ends.
   */
  async liveProgress(tenant: string, opts: { image: boolean }): Promise<Result<{ status: JobStatus; progress: BackendProgress | null; image: string | null }>> {
    const row = this.owned(tenant);
    if (!row) return notFound();
    if (row.status !== "running") return { ok: true, status: row.status, progress: null, image: null };
    const attempt = this.currentAttempt();
    let image: string | null = null;
    if (opts.image && attempt) {
      const cached = this.preview;
      if (cached && cached.attempt === attempt.n && Date.now() - cached.at < PREVIEW_TTL_MS) image = cached.image;
      else {
        const reading = await this.readProgress(attempt, true);
        image = reading?.image ?? null;
        this.preview = { attempt: attempt.n, at: Date.now(), image };
      }
    }
    return { ok: true, status: row.status, progress: this.storedProgress()?.progress ?? null, image };
  }

  // ---- RPC: changes ----

  /** Passes A1111's skip to the backend running this job's attempt; false when there is none that can. */
  async skip(tenant: string): Promise<Result<{ skipped: boolean }>> {
    const row = this.owned(tenant);
    if (!row) return notFound();
    const attempt = this.currentAttempt();
    const backend = attempt && row.status === "running" ? config.backend(this.env, attempt.backend) : undefined;
    const adapter = backend ? adapterFor(backend) : undefined;
    if (!adapter?.skip || !attempt) return { ok: true, skipped: false };
    await adapter.skip({ taskId: taskIdOf(row.id, attempt.n) }, AbortSignal.timeout(PROGRESS_TIMEOUT_MS)).catch(() => undefined);
    return { ok: true, skipped: true };
  }

  /** `onlyQueued`: cancel only a job no backend has started (RunPod's purge-queue). */
  async cancel(tenant: string, onlyQueued = false): Promise<Result<{ snapshot: JobSnapshot }>> {
    const row = this.owned(tenant);
    if (!row) return notFound();
    if (TERMINAL.has(row.status)) return { ok: false, code: "conflict", message: `job is already ${row.status}` };
    if (onlyQueued && row.status !== "queued") return { ok: false, code: "conflict", message: `job is ${row.status}` };
    const attempt = this.currentAttempt();
    await this.finish("canceled", null, []);
    await this.leaveBackend(attempt, row.waiting_on);
    // Its event goes out now, not at the alarm's next firing.
    this.kick();
    return { ok: true, snapshot: await this.snapshot(this.mustRow()) };
  }

  /**
   * RunPod's `/retry`: a failed job (a timed-out one too) goes back in the queue under its own id,
   * with a fresh deadline and every backend to try again. The one way out of `failed`; a canceled
   * or succeeded job stays as it is.
   */
  async retry(tenant: string): Promise<Result<{ snapshot: JobSnapshot }>> {
    const row = this.owned(tenant);
    if (!row) return notFound();
    if (row.status !== "failed") return { ok: false, code: "conflict", message: `only a failed or timed-out job can be retried; this one is ${row.status}` };
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        "UPDATE job SET status = 'queued', started_at = NULL, completed_at = NULL, backend = NULL, output = '[]', error = NULL, deadline_at = ?, dispatch_at = ?, tried = '[]', waiting_on = NULL WHERE id = ?",
        now + parseInput(row).timeout_s * 1000,
        now,
        row.id,
      );
      this.event("job.retried", {}, now);
    });
    await tenantStub(this.env, row.tenant)
      .reopen(row.id)
      .catch((err: unknown) => console.error("job index not reopened", err instanceof Error ? err.message : String(err)));
    await this.reschedule();
    const snapshot = await this.snapshot(this.mustRow());
    this.kick();
    return { ok: true, snapshot };
  }

  /** Sends the terminal event again: same webhook-id, fresh timestamp and signature. */
  async redeliver(tenant: string): Promise<Result<{ event_id: string }>> {
    const row = this.owned(tenant);
    if (!row) return notFound();
    if (!TERMINAL.has(row.status)) return { ok: false, code: "conflict", message: "the job has not ended yet" };
    const out = this.sql
      .exec<{ event_id: string }>("SELECT event_id FROM outbox WHERE type IN ('job.succeeded', 'job.failed', 'job.canceled') ORDER BY seq DESC LIMIT 1")
      .toArray()[0];
    if (!out) return { ok: false, code: "conflict", message: "the job has no webhook" };
    this.sql.exec("UPDATE outbox SET state = 'pending', next_at = ? WHERE event_id = ?", Date.now(), out.event_id);
    await this.reschedule();
    this.kick();
    return { ok: true, event_id: out.event_id };
  }

  /**
   * A backend scheduler granted this job a slot (or dissolved its line): answers whether the job
   * takes it. A job that ended, runs elsewhere or left that line says no, and the scheduler hands
   * the slot on at once.
   */
  async wake(backend: string): Promise<boolean> {
    const row = this.row();
    if (!row || TERMINAL.has(row.status)) return false;
    const attempt = this.currentAttempt();
    if (attempt) return attempt.backend === backend;
    if (row.waiting_on !== backend) return false;
    // Taken up by a step at once, with nothing written first: were this instance lost before
    // that, the claim lapses at the scheduler and the job's own alarm re-checks (REQUEUE_CHECK_MS).
    this.grantedBy = backend;
    this.kick();
    return true;
  }

  /** A completion callback from an asynchronous backend; a forged or replayed one changes nothing. */
  async backendCallback(attemptN: number, token: string, headers: [string, string][], staged: CallbackBody): Promise<{ accepted: boolean }> {
    try {
      // A job deleted after RETENTION_S is not brought back by a late callback.
      if (!this.row()) return { accepted: false };
      const attempt = this.currentAttempt();
      // A fast backend's callback can overtake the answer to the submit itself: `running` counts too.
      if (!attempt || attempt.n !== attemptN || !timingSafeEqual(attempt.token, token)) return { accepted: false };
      const backend = config.backend(this.env, attempt.backend);
      if (!backend) return { accepted: false };
      const input = parseInput(this.mustRow());
      const images = new OutputStore(this.env.IMAGES, input.output_prefix);
      const outcome = await adapterFor(backend)
        .callback({ headers: new Headers(headers), body: this.callbackSource(staged), secret: attempt.token, samples: input.spec.samples, upscale: input.spec.type === "upscale", images })
        .catch(() => undefined);
      if (!outcome) return { accepted: false };
      const reported = outcome.externalId;
      if (reported !== undefined && attempt.external_id !== null && reported !== attempt.external_id) {
        // A second backend job for one attempt (a submit the backend took twice): stopped at once, its result not the job's.
        const ref = { externalId: reported, taskId: taskIdOf(this.mustRow().id, attempt.n) };
        this.ctx.waitUntil(adapterFor(backend).cancel(ref, AbortSignal.timeout(10_000)).catch(() => undefined));
        this.ctx.waitUntil(images.discardExcept([]).catch(() => undefined));
        this.event("attempt.duplicate_canceled", { attempt: attempt.n, backend: backend.name, external_id: reported }, Date.now());
        return { accepted: true };
      }
      // A submit whose answer was lost (see lost-call.ts): the callback says which job is the attempt's.
      if (reported !== undefined && attempt.external_id === null) this.sql.exec("UPDATE attempts SET external_id = ? WHERE n = ?", reported, attempt.n);
      if (outcome.kind === "pending") return { accepted: true };
      await this.settle(attempt.n, backend, outcome, images);
      // The terminal event, or the next attempt, goes out now.
      this.kick();
      return { accepted: true };
    } finally {
      if ("staged" in staged) this.ctx.waitUntil(this.env.IMAGES.delete(staged.staged));
    }
  }

  /** A callback body, inline or staged in R2 by the Worker (a large one): read as a stream, as often as the adapter needs. */
  private callbackSource(staged: CallbackBody): CallbackSource {
    return {
      open: async () => {
        if ("text" in staged) return textStream(staged.text);
        const obj = await this.env.IMAGES.get(staged.staged);
        return obj?.body ?? textStream("");
      },
    };
  }

  // ---- the alarm: dispatch, polling, deadlines, webhook delivery ----

  override async alarm(): Promise<void> {
    await this.step();
  }

  /**
   * One step of the job's work: what is due (dispatch, poll, deadline, deliveries), then the alarm
   * set again. The alarm runs it, and so does whatever makes work due at once (a new job, a granted
   * slot, a call that ended), rather than waiting for the alarm to fire; steps never overlap, or
   * two could dispatch the same job. The alarm stays set either way: a step that is lost with the
   * instance is taken up by the alarm.
   */
  private step(): Promise<void> {
    const next = this.stepping.then(async () => {
      // An object with no job (never created, or deleted after RETENTION_S) has nothing to do.
      if (!this.row() || (await this.purgeIfDue())) return;
      try {
        await Promise.all([this.deliverDue(), this.advance()]);
        // The step above may have ended the job: send its event without waiting for another step.
        await this.deliverDue();
      } catch (err) {
        console.error("job step failed", err instanceof Error ? err.message : String(err));
      }
      await this.reschedule();
    });
    this.stepping = next.catch(() => undefined);
    return next;
  }

  /** Runs a step now, beside the caller. */
  private kick(): void {
    this.ctx.waitUntil(this.step().catch((err: unknown) => console.error("job step failed", err instanceof Error ? err.message : String(err))));
  }

  private async advance(): Promise<void> {
    const row = this.row();
    if (!row || TERMINAL.has(row.status)) return;
    if (await this.expireIfDue(row)) return;
    const attempt = this.currentAttempt();
    if (attempt?.state === "running") {
      if (this.inflight === attempt.n) {
        await this.renewSlot(attempt);
        return;
      }
      // The call was lost (with a previous instance, or a connection cut after the backend may have
      // taken it): not sent again until the backend no longer runs it; its slot is held until then.
      const lost = await checkLostCall(config.backend(this.env, attempt.backend), { taskId: taskIdOf(row.id, attempt.n), askable: parseInput(row).spec.type !== "upscale", startedAt: attempt.started_at });
      // Asking took time: a callback (RunPod's, for a `/run` whose answer was lost) or a cancel may have settled it.
      const still = this.currentAttempt();
      if (still?.n !== attempt.n || still.state !== "running" || this.inflight === attempt.n || TERMINAL.has(this.mustRow().status)) return;
      const at = Date.now();
      const data = { attempt: attempt.n, backend: attempt.backend, found: lost.found };
      if (lost.running) {
        // Logged once, when found (poll_at marks it: the latest the wait can end).
        if (attempt.poll_at === null) {
          this.ctx.storage.transactionSync(() => {
            this.event("attempt.lost", { ...data, waiting_until: iso(lost.until) }, at);
            this.sql.exec("UPDATE attempts SET poll_at = ? WHERE n = ?", lost.until, attempt.n);
          });
        }
        await this.renewSlot(attempt);
        return;
      }
      const tried = new Set<string>(JSON.parse(row.tried) as string[]);
      if (lost.unreachable) tried.add(attempt.backend);
      const message = lost.unreachable ? "the backend could not be reached" : `the call was lost: ${lost.found}`;
      this.ctx.storage.transactionSync(() => {
        this.endAttempt(attempt.n, "failed", message);
        if (attempt.poll_at === null) this.event("attempt.lost", data, at);
        else this.event("attempt.failed", { attempt: attempt.n, backend: attempt.backend, code: lost.unreachable ? "backend_unavailable" : "lost", message }, at);
        this.sql.exec("UPDATE job SET dispatch_at = ?, tried = ? WHERE id = ?", at, JSON.stringify([...tried]), row.id);
      });
      await this.releaseSlot(attempt.backend, "neutral");
    } else if (attempt?.state === "pending") {
      if (dueBy(attempt.poll_at)) await this.pollAttempt(attempt);
      else await this.renewSlot(attempt);
      return;
    }
    const fresh = this.mustRow();
    const granted = this.grantedBy !== undefined && this.grantedBy === fresh.waiting_on;
    this.grantedBy = undefined;
    if (granted || dueBy(fresh.dispatch_at)) await this.dispatch(fresh);
  }

  /**
   * Fails a job past its deadline with `timeout` and leaves its backend (see leaveBackend: a slot
   * the GPU may still use is not given back). Checked on every heartbeat, so also while a
   * synchronous call is in flight. True when the job ended here.
   */
  private async expireIfDue(row: JobRow): Promise<boolean> {
    if (TERMINAL.has(row.status) || !dueBy(row.deadline_at)) return false;
    const attempt = this.currentAttempt();
    await this.finish("failed", { code: "timeout", message: `the job did not finish within ${parseInput(row).timeout_s} s` }, []);
    await this.leaveBackend(attempt, row.waiting_on);
    return true;
  }

  /** Finds a backend with a free slot and runs the job there, failing over while any is left. */
  private async dispatch(row: JobRow): Promise<void> {
    const input = parseInput(row);
    const tried = new Set<string>(JSON.parse(row.tried) as string[]);
    const all = fittingBackends(config.backends(this.env), { type: input.spec.type, model: input.spec.model, backend: input.backend, pinOverridesModels: input.pin_overrides_models });
    // The line the job waits in comes first: a slot granted there is this job's claim.
    const candidates = all.filter((b) => !tried.has(b.name)).sort((a, b) => Number(b.name === row.waiting_on) - Number(a.name === row.waiting_on));
    if (!candidates.length) {
      const last = this.lastAttemptError();
      await this.finish("failed", { code: "backend_failed", message: last ?? "no configured backend serves this job" }, []);
      await this.releaseSlot(row.waiting_on ?? "", "neutral");
      return;
    }
    let granted: BackendConfig | undefined;
    const busy: { backend: BackendConfig; load: number }[] = [];
    let retryAt = Date.now() + REQUEUE_CHECK_MS;
    for (const backend of candidates) {
      const res = await this.acquire(row, backend, false);
      if (res.status === "granted") {
        granted = backend;
        break;
      }
      if (res.status === "busy") busy.push({ backend, load: res.load });
      if (res.status === "open") retryAt = Math.min(retryAt, res.retry_at);
    }
    if (!granted) {
      // Everything fitting is busy: wait in one line, woken when a slot frees there. A job keeps its
      // place in the line it is in; it joins the least loaded one only when it is in none that fits.
      const best = busy.find((b) => b.backend.name === row.waiting_on) ?? busy.sort((a, b) => a.load - b.load)[0];
      let waitingOn: string | null = null;
      if (best?.backend.name !== row.waiting_on) {
        // Leave the old line before joining another, and say where the job waits before it joins,
        // so a wake-up that comes at once finds it wanted.
        await this.releaseSlot(row.waiting_on ?? "", "neutral");
        this.sql.exec("UPDATE job SET waiting_on = ? WHERE id = ?", best?.backend.name ?? null, row.id);
      }
      if (best) {
        const res = await this.acquire(row, best.backend, true);
        if (res.status === "granted") granted = best.backend;
        else if (res.status === "queued") waitingOn = best.backend.name;
        else await this.releaseSlot(best.backend.name, "neutral");
      }
      if (!granted) {
        this.sql.exec("UPDATE job SET dispatch_at = ?, waiting_on = ? WHERE id = ?", retryAt, waitingOn, row.id);
        return;
      }
    }
    await this.runAttempt(this.mustRow(), input, granted);
  }

  private async acquire(row: JobRow, backend: BackendConfig, enqueue: boolean): Promise<AcquireResult> {
    try {
      return await this.scheduler(backend.name).acquire({
        backend: backend.name,
        jobId: row.id,
        tenant: row.tenant,
        maxConcurrency: backend.max_concurrency,
        cooldownMs: backend.circuit_cooldown_s * 1000,
        leaseMs: SLOT_LEASE_MS,
        enqueue,
      });
    } catch {
      return { status: "open", retry_at: Date.now() + 1000 };
    }
  }

  private async runAttempt(row: JobRow, input: StoredJobInput, backend: BackendConfig): Promise<void> {
    const now = Date.now();
    // Granted here while waiting in another backend's line: leave that line.
    if (row.waiting_on && row.waiting_on !== backend.name) await this.releaseSlot(row.waiting_on, "neutral");
    const n = (this.sql.exec<{ n: number | null }>("SELECT MAX(n) AS n FROM attempts").one().n ?? 0) + 1;
    const token = await callbackToken(this.env, row.id, n);
    const start = row.status === "queued" ? await this.prepareStart(now) : undefined;
    // A cancel may have landed before this, or while the above was computed.
    const status = this.mustRow().status;
    if (TERMINAL.has(status) || status !== row.status) {
      await this.releaseSlot(backend.name, "neutral");
      return;
    }
    // The job's start and its first attempt in one transaction: one commit before the call goes out.
    this.ctx.storage.transactionSync(() => {
      start?.();
      // A new attempt starts from nothing: the figures of a failed one are not this one's.
      this.sql.exec("DELETE FROM progress");
      this.sql.exec("INSERT INTO attempts (n, backend, state, token, started_at) VALUES (?, ?, 'running', ?, ?)", n, backend.name, token, now);
      this.sql.exec("UPDATE job SET dispatch_at = NULL, waiting_on = NULL, backend = ? WHERE id = ?", backend.name, row.id);
      this.event("attempt.started", { attempt: n, backend: backend.name }, now);
    });

    // The call runs outside the alarm handler, so the heartbeat keeps beating while it is in flight
    // (it enforces the deadline meanwhile: see advance).
    this.inflight = n;
    this.renewedAt = now;
    this.ctx.waitUntil(this.callBackend(row.id, n, token, input, backend));
  }

  private async callBackend(jobId: string, n: number, token: string, input: StoredJobInput, backend: BackendConfig): Promise<void> {
    const adapter = adapterFor(backend);
    // Progress is read beside the synchronous call, for exactly as long as it runs.
    const watch = new AbortController();
    if (adapter.progress) this.ctx.waitUntil(this.watchProgress(n, watch.signal));
    const images = new OutputStore(this.env.IMAGES, input.output_prefix);
    let returning: Promise<void> | undefined;
    // A synchronous backend that answered 200 has finished generating: the next job in line may
    // start while this answer's images are read and stored (the GPU would idle through that). The
    // verdict waits for the body (a 200 without images is a failure): settle gives it.
    const onFinished = () => {
      this.slotReturned = n;
      returning = this.releaseSlot(backend.name, "later");
    };
    let outcome: Outcome;
    try {
      const initImage = input.spec.init_image_key ? await getImageBytes(this.env.IMAGES, input.spec.init_image_key) : undefined;
      outcome = await adapter.submit({
        spec: (await this.fullInput(input)).spec,
        initImage,
        callbackUrl: `${input.public_base_url}/internal/callbacks/${encodeURIComponent(jobId)}/${n}/${token}`,
        callbackSecret: token,
        taskId: taskIdOf(jobId, n),
        // Never cut short from here: the backend would go on generating with its slot given back.
        signal: AbortSignal.timeout(backend.timeout_s * 1000 + 5_000),
        images,
        onFinished,
      });
    } catch (err) {
      outcome = { kind: "failed", failure: { code: "backend_failed", message: "the attempt failed inside the gateway", detail: err instanceof Error ? err.message : String(err), retryable: true } };
    } finally {
      watch.abort();
    }
    await returning;
    try {
      await this.settle(n, backend, outcome, images);
    } catch (err) {
      console.error("settling an attempt failed", err instanceof Error ? err.message : String(err));
    } finally {
      // Only now: until the outcome is applied, the heartbeat must not take the call for lost.
      if (this.inflight === n) this.inflight = undefined;
    }
    // The terminal event, or the next attempt, goes out now.
    await this.step();
  }

  private async pollAttempt(attempt: AttemptRow): Promise<void> {
    const backend = config.backend(this.env, attempt.backend);
    if (!backend || !attempt.external_id) {
      await this.settle(attempt.n, backend, { kind: "failed", failure: { code: "backend_failed", message: "backend no longer configured", retryable: true } });
      return;
    }
    const input = parseInput(this.mustRow());
    const images = new OutputStore(this.env.IMAGES, input.output_prefix);
    // The adapter bounds the status call itself; a hung one comes back as unavailable, not canceled.
    const outcome = await adapterFor(backend)
      .poll(attempt.external_id, { samples: input.spec.samples, upscale: input.spec.type === "upscale", signal: AbortSignal.timeout(30_000), images })
      .catch((err: unknown): Outcome => ({ kind: "failed", failure: { code: "backend_unavailable", message: "the backend could not be asked", detail: String(err), retryable: true } }));
    if (outcome.kind === "pending" || (outcome.kind === "failed" && outcome.failure.code === "backend_unavailable")) {
      // Still running there, or a status call that failed (no verdict on the generation, which may
      // well be running): keep the slot, and ask again later.
      if (outcome.kind === "pending") await this.readProgress(attempt, false);
      await this.renewSlot(attempt, true);
      this.backoffPoll(attempt);
      return;
    }
    await this.settle(attempt.n, backend, outcome, images);
  }

  private backoffPoll(attempt: AttemptRow): void {
    const delay = Math.min(POLL_MAX_MS, Math.round(attempt.poll_delay * 1.5));
    this.sql.exec("UPDATE attempts SET poll_at = ?, poll_delay = ? WHERE n = ?", Date.now() + delay, delay, attempt.n);
  }

  /**
   * Applies an attempt's outcome, unless the job moved on (canceled, timed out) meanwhile. The
   * adapter stored the answer's images as it read them: those the job does not keep are removed.
   */
  private async settle(n: number, backend: BackendConfig | undefined, outcome: Outcome, stored?: OutputStore): Promise<void> {
    const current = () => {
      const a = this.currentAttempt();
      const row = this.mustRow();
      return a?.n === n && row.status === "running" ? row : undefined;
    };
    const name = backend?.name ?? "";
    // A slot already given back when the backend answered is not released twice: it gets its verdict.
    const release = (outcome: AttemptOutcome): Promise<void> => (this.slotReturned === n ? this.judgeSlot(name, outcome) : this.releaseSlot(name, outcome));
    if (!current()) {
      // The job ended without this attempt (canceled, timed out): its slot must not leak. An
      // asynchronous backend that took the job meanwhile runs it now: it is stopped there first
      // (RunPod), or its slot stays taken while it may run (see leaveBackend).
      if (!TERMINAL.has(this.mustRow().status)) return;
      const taken = this.attempts("WHERE n = ?", n)[0];
      if (outcome.kind === "pending" && taken) await this.leaveBackend({ ...taken, state: "pending", external_id: outcome.externalId }, null);
      // A lost call of a job that ended meanwhile may still run: its slot stays taken while it may.
      else if (outcome.kind === "lost" && taken?.state === "canceled") await this.orphanSlot(taken);
      else await release("neutral");
      return;
    }
    // The attempt stays running without a call in flight: the next heartbeat finds it lost (see advance).
    if (outcome.kind === "lost") return;
    if (outcome.kind === "pending") {
      this.sql.exec("UPDATE attempts SET state = 'pending', external_id = ?, poll_at = ?, poll_delay = ? WHERE n = ?", outcome.externalId, Date.now() + outcome.pollAfterMs, Math.max(POLL_MIN_MS, outcome.pollAfterMs), n);
      this.event("attempt.submitted", { attempt: n, backend: name, external_id: outcome.externalId }, Date.now());
      return;
    }
    if (stored) this.ctx.waitUntil(stored.discardExcept(outcome.kind === "done" ? outcome.images : []).catch(() => undefined));
    if (outcome.kind === "done") {
      const input = parseInput(this.mustRow());
      const outputs: StoredOutput[] = outcome.images.map((image, i) => ({ ...image, seed: seedOf(input, i) }));
      const written = await this.writeS3Outputs(input, outputs).then(
        () => undefined,
        (err: unknown): BackendFailure => ({ code: "backend_failed", message: "writing the outputs to S3 failed", detail: err instanceof Error ? err.message : String(err), retryable: true }),
      );
      if (written) return this.settle(n, backend, { kind: "failed", failure: written });
      // Storing took time: a cancel may have landed meanwhile, and a canceled job never succeeds.
      const ended = await this.finish("succeeded", null, outputs, { guard: () => current() !== undefined, also: () => this.endAttempt(n, "done", null) });
      if (!ended) return this.settle(n, backend, outcome);
      await release("success");
      return;
    }
    const f = outcome.failure;
    // The backend's own words go to the operator's log only; tenants see what Easel wrote.
    if (f.detail) console.warn(`backend ${name} attempt failed (${f.code}): ${redact(f.detail, [backend?.api_key, backend?.password])}`);
    // The attempt's end and what follows it (the job's end, or its next dispatch) are one
    // transaction: a restart between them would leave a job running with nothing to run.
    const failedAttempt = () => {
      this.endAttempt(n, "failed", f.message);
      this.event("attempt.failed", { attempt: n, backend: name, code: f.code, message: f.message }, Date.now());
    };
    if (!f.retryable) {
      await this.finish("failed", { code: f.code, message: f.message }, [], { guard: () => current() !== undefined, also: failedAttempt });
      await release("neutral");
      return;
    }
    const row = this.mustRow();
    const tried = new Set<string>(JSON.parse(row.tried) as string[]);
    tried.add(name);
    this.ctx.storage.transactionSync(() => {
      failedAttempt();
      this.sql.exec("UPDATE job SET tried = ?, dispatch_at = ? WHERE id = ?", JSON.stringify([...tried]), Date.now(), row.id);
    });
    await release(countsAgainstBackend(f) ? "failure" : "neutral");
  }

  // ---- live progress: read from the backend, kept while the job runs, events rate-limited ----

  /** Reads progress every PROGRESS_READ_MS (later PROGRESS_READ_SLOW_MS) until `signal` (the end of the call) says stop. */
  private async watchProgress(n: number, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    while (!signal.aborted) {
      const every = Date.now() - started < PROGRESS_FAST_FOR_MS ? PROGRESS_READ_MS : PROGRESS_READ_SLOW_MS;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, every);
        signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      });
      const attempt = this.currentAttempt();
      if (signal.aborted || attempt?.n !== n) return;
      await this.readProgress(attempt, false, signal);
    }
  }

  /** One reading from the attempt's backend, recorded when the attempt is still the job's. */
  private async readProgress(attempt: AttemptRow, image: boolean, stop?: AbortSignal) {
    const backend = config.backend(this.env, attempt.backend);
    const adapter: BackendAdapter | undefined = backend ? adapterFor(backend) : undefined;
    if (!adapter?.progress) return undefined;
    const timeout = AbortSignal.timeout(PROGRESS_TIMEOUT_MS);
    const reading = await adapter
      .progress({ taskId: taskIdOf(this.mustRow().id, attempt.n), externalId: attempt.external_id ?? undefined, image, signal: stop ? AbortSignal.any([stop, timeout]) : timeout })
      .catch(() => undefined);
    if (reading) this.recordProgress(attempt.n, reading.progress);
    return reading;
  }

  /**
   * Keeps the latest figures of a running attempt; a change becomes a `job.progress` event unless
   * the last one is under PROGRESS_EVENT_GAP_MS old (the next reading catches up).
   */
  private recordProgress(n: number, p: BackendProgress): void {
    const row = this.row();
    if (!row || row.status !== "running" || this.currentAttempt()?.n !== n) return;
    const now = Date.now();
    const shown = JSON.stringify(v1Progress(p));
    const prev = this.sql.exec<ProgressRow>("SELECT attempt, data, event_data, event_at FROM progress LIMIT 1").toArray()[0];
    const due = prev?.attempt !== n || (prev.event_data !== shown && (prev.event_at === null || now - prev.event_at >= PROGRESS_EVENT_GAP_MS));
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("DELETE FROM progress WHERE attempt != ?", n);
      this.sql.exec(
        "INSERT INTO progress (attempt, data, event_data, event_at) VALUES (?, ?, ?, ?) ON CONFLICT (attempt) DO UPDATE SET data = excluded.data, event_data = excluded.event_data, event_at = excluded.event_at",
        n,
        JSON.stringify(p),
        due ? shown : (prev?.event_data ?? null),
        due ? now : (prev?.event_at ?? null),
      );
      if (due) this.event("job.progress", JSON.parse(shown) as Record<string, unknown>, now);
    });
  }

  private storedProgress(): { attempt: number; progress: BackendProgress } | undefined {
    const row = this.sql.exec<ProgressRow>("SELECT attempt, data, event_data, event_at FROM progress LIMIT 1").toArray()[0];
    return row ? { attempt: row.attempt, progress: JSON.parse(row.data) as BackendProgress } : undefined;
  }

  /**
   * Where the job asks for it (SD-on-EKS with `S3_OUTPUT_BUCKET`), the images and then the dialect's
   * manifest go to the operator's S3 bucket, before the job succeeds: its notification names them.
   */
  /** One image at a time, read back from R2: the job never holds all of its outputs' bytes. */
  private async writeS3Outputs(input: StoredJobInput, outputs: StoredOutput[]): Promise<void> {
    const out = input.s3_output;
    if (!out) return;
    const s3 = config.s3(this.env);
    if (!s3) throw new Error("no S3 store is configured (S3_ENDPOINT...)");
    for (const [i, output] of outputs.entries()) {
      const bytes = await getImageBytes(this.env.IMAGES, output.key);
      if (!bytes) throw new Error(`output ${i} is missing from storage`);
      await putS3Object(s3, out.bucket, s3ImageKey(out, i, output.content_type), bytes, output.content_type);
    }
    const manifest = renderOutputManifest(await this.fullInput(input), { ok: true, outputs });
    if (manifest !== null) await putS3Object(s3, out.bucket, s3ManifestKey(out), manifest, "application/json");
  }

  /** A failed job's manifest still goes to S3, as SD-on-EKS writes one either way; best effort. */
  private async writeS3FailureManifest(input: StoredJobInput, error: JobError): Promise<void> {
    const out = input.s3_output;
    const s3 = config.s3(this.env);
    if (!out || !s3) return;
    const manifest = renderOutputManifest(await this.fullInput(input), { ok: false, message: error.message });
    if (manifest === null) return;
    await putS3Object(s3, out.bucket, s3ManifestKey(out), manifest, "application/json").catch((err: unknown) => console.error("S3 failure manifest not written", err instanceof Error ? err.message : String(err)));
  }

  /**
   * After the job ended: leaves its line, tells the backend to stop its attempt (so whatever the
   * backend answers cannot revive the job), and gives the slot back, but not while the GPU may
   * still be working for it, or `max_concurrency` would be exceeded. A call still open here keeps
   * the slot until it ends (an interrupt makes A1111 answer at once; Cerebrium cannot be stopped)
   * and its settle releases it; RunPod stops a canceled job, so its slot comes back at once;
   * anything else stays taken until that generation is presumably over (see the scheduler's orphan).
   */
  private async leaveBackend(attempt: AttemptRow | undefined, waitingOn: string | null): Promise<void> {
    if (!attempt) {
      await this.releaseSlot(waitingOn ?? "", "neutral");
      return;
    }
    const backend = config.backend(this.env, attempt.backend);
    const ref = { externalId: attempt.external_id ?? undefined, taskId: taskIdOf(this.mustRow().id, attempt.n) };
    const stopped = backend ? adapterFor(backend).cancel(ref, AbortSignal.timeout(10_000)).catch(() => undefined) : Promise.resolve();
    // In the background: a slow backend must not delay the caller.
    if (attempt.state === "running" && this.inflight === attempt.n) this.ctx.waitUntil(stopped);
    else if (attempt.state === "pending" && backend?.kind === "runpod") this.ctx.waitUntil(stopped.then(() => this.releaseSlot(attempt.backend, "neutral")));
    else {
      this.ctx.waitUntil(stopped);
      await this.orphanSlot(attempt);
    }
  }

  /** Keeps the slot of an attempt under way (at most every RENEW_MS unless `now`). */
  private async renewSlot(attempt: AttemptRow, now = false): Promise<void> {
    // A slot given back must not be taken again by a renewal (the scheduler's renew re-takes it).
    if (this.slotReturned === attempt.n) return;
    if (!now && Date.now() - this.renewedAt < RENEW_MS) return;
    this.renewedAt = Date.now();
    const row = this.mustRow();
    await this.scheduler(attempt.backend)
      .renew(row.id, row.tenant, SLOT_LEASE_MS)
      .catch(() => undefined);
  }

  /** The attempt's generation may still run: its slot stays taken until it presumably cannot. */
  private async orphanSlot(attempt: AttemptRow): Promise<void> {
    const timeoutMs = (config.backend(this.env, attempt.backend)?.timeout_s ?? 600) * 1000;
    await this.scheduler(attempt.backend)
      .orphan(this.mustRow().id, attempt.n, attempt.started_at, timeoutMs)
      .catch(() => undefined);
  }

  /** The verdict on an attempt whose slot went back when its backend answered (see callBackend). */
  private async judgeSlot(backend: string, outcome: AttemptOutcome): Promise<void> {
    if (!backend) return;
    await this.scheduler(backend)
      .judge(this.mustRow().id, outcome)
      .catch(() => undefined);
  }

  private async releaseSlot(backend: string, outcome: ReleaseOutcome): Promise<void> {
    if (!backend) return;
    await this.scheduler(backend)
      .release(this.mustRow().id, outcome)
      .catch(() => undefined);
  }

  private scheduler(name: string) {
    return this.env.BACKEND_SCHEDULERS.get(this.env.BACKEND_SCHEDULERS.idFromName(name));
  }

  // ---- state changes: each one with its event and outbox row in one transaction ----

  /**
   * queued → running: renders the `job.started` body, then answers the writes that start the job
   * (its row, event and outbox row), for the caller's transaction.
   */
  private async prepareStart(now: number): Promise<() => void> {
    const row = this.mustRow();
    const input = parseInput(row);
    const started = { ...row, status: "running" as const, started_at: now };
    const body = input.webhook && input.webhook_events.includes("job.started") ? await this.webhookBody(started, "job.started", now) : null;
    return () => {
      this.sql.exec("UPDATE job SET status = 'running', started_at = ? WHERE id = ?", now, row.id);
      this.event("job.started", {}, now);
      if (body !== null && input.webhook) this.enqueueWebhook("job.started", input.webhook, body, now);
    };
  }

  /**
   * Ends the job, with its event and outbox row; `also` joins the same transaction, `guard` must
   * still hold when it runs. Answers whether the job ended here.
   */
  private async finish(
    status: "succeeded" | "failed" | "canceled",
    error: JobError | null,
    outputs: StoredOutput[],
    opts: { guard?: () => boolean; also?: () => void } = {},
  ): Promise<boolean> {
    const row = this.mustRow();
    if (!canTransition(row.status, status)) return false;
    const now = Date.now();
    const type: WebhookEventType = `job.${status}`;
    const input = parseInput(row);
    const ended: JobRow = { ...row, status, completed_at: now, error: error ? JSON.stringify(error) : null, output: JSON.stringify(outputs) };
    if (status === "failed" && error) await this.writeS3FailureManifest(input, error);
    const body = input.webhook && input.webhook_events.includes(type) ? await this.webhookBody(ended, type, now) : null;
    // Rendering awaited: make sure nobody ended the job meanwhile.
    if (!canTransition(this.mustRow().status, status) || (opts.guard && !opts.guard())) return false;
    this.ctx.storage.transactionSync(() => {
      opts.also?.();
      this.sql.exec("UPDATE job SET status = ?, completed_at = ?, error = ?, output = ?, dispatch_at = NULL, waiting_on = NULL WHERE id = ?", status, now, ended.error, ended.output, row.id);
      this.sql.exec("UPDATE attempts SET state = 'canceled', ended_at = ? WHERE state IN ('running', 'pending')", now);
      this.sql.exec("DELETE FROM progress");
      this.event(type, error ? { error } : { outputs: outputs.length }, now);
      if (body !== null && input.webhook) this.enqueueWebhook(type, input.webhook, body, now);
    });
    this.ctx.waitUntil(this.reportEnd());
    await this.reschedule();
    return true;
  }

  private async webhookBody(row: JobRow, type: WebhookEventType, now: number): Promise<SlottedBody | null> {
    const body = await renderWebhookBody(this.env, await this.snapshot(row, { full: true }), type, now);
    return body === null ? null : serializeWithSlots(body);
  }

  private enqueueWebhook(type: WebhookEventType, url: string, body: SlottedBody, now: number): void {
    this.sql.exec(
      "INSERT INTO outbox (event_id, type, url, body, slots, next_at, state) VALUES (?, ?, ?, ?, ?, ?, 'pending')",
      randomId("msg"),
      type,
      url,
      body.text,
      JSON.stringify(body.slots),
      now,
    );
  }

  private event(type: string, data: Record<string, unknown>, at: number): void {
    this.sql.exec("INSERT INTO events (type, at, data) VALUES (?, ?, ?)", type, at, JSON.stringify(data));
    for (const wake of [...this.waiters]) wake();
  }

  private endAttempt(n: number, state: "done" | "failed", error: string | null): void {
    this.sql.exec("UPDATE attempts SET state = ?, ended_at = ?, error = ? WHERE n = ?", state, Date.now(), error, n);
  }

  // ---- the tenant's job index ----

  /**
   * Tells the tenant's index the job has ended, so it stops counting as active. Fire and forget:
   * the index checks its old active rows against their jobs on its own alarm, so a lost report
   * only delays the correction. (The index does not track queued vs running: both are active.)
   */
  private async reportEnd(): Promise<void> {
    const row = this.mustRow();
    const input = parseInput(row);
    await tenantStub(this.env, row.tenant)
      .setStatus({ id: row.id, created_at: row.created_at, status: row.status, type: input.spec.type, track_id: input.track_id ?? null })
      .catch((err: unknown) => console.error("job index update failed; the index will check", err instanceof Error ? err.message : String(err)));
  }

  // ---- retention ----

  /**
   * RETENTION_S after the job ended, once its webhook events are sent or given up (a body's images
   * are read from R2 as it is sent): its files in R2, its rows in the tenant's object (index row,
   * idempotency key, task id) and then all of its own storage go. Each part can be done again, so a
   * purge cut short by a restart is simply done again whole. True when the job is gone.
   */
  private async purgeIfDue(): Promise<boolean> {
    const row = this.row();
    if (!row || !TERMINAL.has(row.status) || row.completed_at === null) return false;
    if (!dueBy(Math.max(row.completed_at + config.retentionMs(this.env), this.purgeRetryAt))) return false;
    if (this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'").one().n > 0) return false;
    try {
      const input = parseInput(row);
      await deletePrefixes(this.env.IMAGES, [`inputs/${row.id}/`, `callbacks/${row.id}/`, `${input.output_prefix}/`]);
      await tenantStub(this.env, row.tenant).purgeJob(row.id);
    } catch (err) {
      console.error("purging an expired job failed; tried again later", err instanceof Error ? err.message : String(err));
      this.purgeRetryAt = Date.now() + PURGE_RETRY_MS;
      return false;
    }
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.schemaReady = false;
    return true;
  }

  // ---- webhook delivery: in order, one event at a time, on the schedule ----

  /**
   * One delivery loop at a time per instance: alarms now fire while backend calls are in flight,
   * and two loops would both send the head event (a duplicate delivery).
   */
  private deliverDue(): Promise<void> {
    this.delivering ??= this.deliverLoop().finally(() => {
      this.delivering = undefined;
    });
    return this.delivering;
  }

  private async deliverLoop(): Promise<void> {
    this.supersedeStarted();
    for (let i = 0; i < MAX_DELIVERIES_PER_ALARM; i++) {
      // Head of line only: a later event never overtakes an earlier one of the same job.
      const head = this.sql.exec<OutboxRow>("SELECT event_id, type, url, body, slots, attempts, next_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1").toArray()[0];
      if (!head || !dueBy(head.next_at)) return;
      const row = this.mustRow();
      const secrets = config.tenant(this.env, row.tenant)?.webhook_secrets ?? [];
      const attempt = head.attempts + 1;
      const startedAt = Date.now();
      const slots = JSON.parse(head.slots) as SlottedBody["slots"];
      // A body with images is streamed from R2 as it is sent, never built whole.
      const body = slots.length ? await slottedStream(this.env.IMAGES, { text: head.body, slots }, (JSON.parse(row.output) as StoredOutput[]).map((o) => o.key)) : head.body;
      const result = await attemptDelivery({ url: head.url, eventId: head.event_id, body, secrets });
      const delay = result.verdict === "retry" ? nextDelayMs(config.retrySchedule(this.env), attempt, result.retry_after_ms) : null;
      const nextAt = delay === null ? null : Date.now() + delay;
      const state = result.verdict === "retry" ? (nextAt === null ? "failed" : "pending") : result.verdict;
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE outbox SET attempts = ?, next_at = ?, state = ? WHERE event_id = ?", attempt, nextAt, state, head.event_id);
        this.sql.exec(
          "INSERT INTO deliveries (event_id, type, attempt, url, started_at, status_code, error, duration_ms, response_body, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          head.event_id,
          head.type,
          attempt,
          head.url,
          startedAt,
          result.status_code,
          result.error,
          result.duration_ms,
          result.response_body,
          nextAt,
        );
        // A delivery that ends without a 2xx is shown in the job's own log, not only in the deliveries.
        if (state === "failed" || state === "gone") {
          this.event(`webhook.${state}`, { event_id: head.event_id, type: head.type, attempts: attempt, status_code: result.status_code }, Date.now());
        }
      });
    }
  }

  /**
   * A `job.started` that has failed its first attempt by the time the job ended gives way to the
   * terminal event: the outcome says all it says, and its retries (hours, on the schedule) would
   * otherwise hold the outcome back after the receiver recovers. Logged in the job's events.
   */
  private supersedeStarted(): void {
    const stale = this.sql
      .exec<{ event_id: string }>(
        `SELECT event_id FROM outbox o WHERE state = 'pending' AND type = 'job.started' AND attempts > 0
         AND EXISTS (SELECT 1 FROM outbox t WHERE t.seq > o.seq AND t.type IN ('job.succeeded', 'job.failed', 'job.canceled'))`,
      )
      .toArray();
    if (!stale.length) return;
    this.ctx.storage.transactionSync(() => {
      for (const { event_id } of stale) {
        this.sql.exec("UPDATE outbox SET state = 'superseded', next_at = NULL WHERE event_id = ?", event_id);
        this.event("webhook.superseded", { event_id, type: "job.started" }, Date.now());
      }
    });
  }

  /** One alarm for everything: the earliest of dispatch, poll, heartbeat, deadline and next delivery. */
  private async reschedule(): Promise<void> {
    const row = this.row();
    if (!row) return;
    const times: number[] = [];
    const head = this.sql.exec<{ next_at: number | null }>("SELECT next_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1").toArray()[0];
    if (head?.next_at != null) times.push(head.next_at);
    if (!TERMINAL.has(row.status)) {
      times.push(row.deadline_at);
      if (row.dispatch_at !== null) times.push(row.dispatch_at);
      const attempt = this.currentAttempt();
      if (attempt?.state === "pending" && attempt.poll_at !== null) times.push(attempt.poll_at);
      if (attempt?.state === "running") times.push(Date.now() + HEARTBEAT_MS);
      if (attempt?.state === "pending") times.push(Date.now() + RENEW_MS);
    } else if (head === undefined && row.completed_at !== null) {
      // Ended, its events sent: the next thing due is its deletion.
      times.push(Math.max(row.completed_at + config.retentionMs(this.env), this.purgeRetryAt));
    }
    if (times.length) await this.ctx.storage.setAlarm(Math.min(...times));
    else await this.ctx.storage.deleteAlarm();
  }

  // ---- reading state ----

  /** The job, if this object holds one; an object without one is not given tables by being read. */
  private row(): JobRow | undefined {
    if (!this.schemaReady && !this.ctx.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'job'").toArray().length) return undefined;
    return this.sql.exec<JobRow>("SELECT * FROM job LIMIT 1").toArray()[0];
  }

  private mustRow(): JobRow {
    const row = this.row();
    if (!row) throw new Error("job row missing");
    return row;
  }

  /** The job if it belongs to `tenant`; another tenant's job does not exist for them. */
  private owned(tenant: string): JobRow | undefined {
    const row = this.row();
    return row && timingSafeEqual(row.tenant, tenant) ? row : undefined;
  }

  private currentAttempt(): AttemptRow | undefined {
    return this.attempts("WHERE state IN ('running', 'pending') ORDER BY n DESC LIMIT 1")[0];
  }

  private attempts(where: string, ...bindings: SqlStorageValue[]): AttemptRow[] {
    return this.sql.exec<AttemptRow>(`SELECT n, backend, state, external_id, poll_at, poll_delay, token, started_at FROM attempts ${where}`, ...bindings).toArray();
  }

  private lastAttemptError(): string | undefined {
    return this.sql.exec<{ error: string | null }>("SELECT error FROM attempts WHERE error IS NOT NULL ORDER BY n DESC LIMIT 1").toArray()[0]?.error ?? undefined;
  }

  private eventsAfter(seq: number): JobEvent[] {
    return this.sql
      .exec<{ seq: number; type: string; at: number; data: string }>("SELECT seq, type, at, data FROM events WHERE seq > ? ORDER BY seq", seq)
      .toArray()
      .map((e) => ({ seq: e.seq, type: e.type, at: iso(e.at), data: JSON.parse(e.data) as Record<string, unknown> }));
  }

  /** The input with its large pass-through fields read back from R2 (see intake's storePassThrough). */
  private async fullInput(input: StoredJobInput): Promise<StoredJobInput> {
    if (!input.pass_through_key) return input;
    const obj = await this.env.IMAGES.get(input.pass_through_key);
    if (!obj) return input;
    const moved = (await obj.json()) as { a1111_extra?: Record<string, unknown>; dialect_data?: Record<string, unknown> };
    const a1111_extra = input.spec.a1111_extra || moved.a1111_extra ? { ...input.spec.a1111_extra, ...moved.a1111_extra } : undefined;
    return { ...input, spec: { ...input.spec, a1111_extra }, dialect_data: { ...input.dialect_data, ...moved.dialect_data } };
  }

  /**
   * The job as the routes show it. The large pass-through fields are read from R2 only for a
   * finished job's full rendering (`full`), never for /v1, a progress tick or a running job.
   */
  private async snapshot(row: JobRow, opts: { full?: boolean } = {}): Promise<JobSnapshot> {
    const input = opts.full && TERMINAL.has(row.status) ? await this.fullInput(parseInput(row)) : parseInput(row);
    const outputs = JSON.parse(row.output) as StoredOutput[];
    const [secret] = config.urlSigningSecrets(this.env);
    const now = Date.now();
    const end = row.completed_at ?? now;
    const job: Job = {
      id: row.id,
      status: row.status,
      type: input.spec.type,
      track_id: input.track_id ?? null,
      created_at: iso(row.created_at),
      started_at: row.started_at === null ? null : iso(row.started_at),
      completed_at: row.completed_at === null ? null : iso(row.completed_at),
      backend: row.backend,
      model: input.spec.model ?? null,
      seed: input.spec.type === "upscale" ? null : input.spec.seed,
      output: await Promise.all(
        outputs.map(async (o) => ({
          url: await signedOutputUrl(input.public_base_url, secret, o.key, now),
          content_type: o.content_type,
          width: o.width,
          height: o.height,
          seed: o.seed,
        })),
      ),
      error: row.error === null ? null : (JSON.parse(row.error) as JobError),
      metrics: {
        queue_ms: (row.started_at ?? end) - row.created_at,
        run_ms: row.started_at === null ? 0 : end - row.started_at,
      },
      progress: row.status === "running" ? ((p) => (p ? v1Progress(p.progress) : null))(this.storedProgress()) : null,
    };
    return { job, input, output_keys: outputs.map((o) => o.key) };
  }
}

/** The id a backend knows an attempt by (A1111's `force_task_id`). */
const taskIdOf = (runId: string, attempt: number): string => `${runId}-${attempt}`;
/**
 * Whether a failure says something about the backend's health. A request's own fault, and what a
 * request can bring about on any backend (running out of memory on its size, being interrupted),
 * must not let one tenant open a shared backend's circuit for everyone.
 */
const countsAgainstBackend = (f: BackendFailure): boolean => f.retryable && f.code !== "out_of_memory" && f.code !== "interrupted";
const iso = (ms: number): string => new Date(ms).toISOString();
/** /v1's progress object: rounded, so that clock noise in the ETA is not a change. */
const v1Progress = (p: BackendProgress): JobProgress => ({
  fraction: Math.round(p.fraction * 1000) / 1000,
  step: p.step,
  steps: p.steps,
  eta_s: p.eta_s === null ? null : Math.round(p.eta_s * 10) / 10,
});
const notFound = (): { ok: false; code: "not_found"; message: string } => ({ ok: false, code: "not_found", message: "job not found" });
const parseInput = (row: JobRow): StoredJobInput => JSON.parse(row.input) as StoredJobInput;

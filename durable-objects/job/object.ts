import { DurableObject } from "cloudflare:workers";
import { adapterFor } from "../../src/backends";
import type { BackendProgress } from "../../src/backends/types";
import { config, type BackendConfig } from "../../src/config";
import type { CallbackBody } from "../../src/contracts/job";
import type { Env } from "../../src/env";
import type { JobSnapshot, Result } from "../../src/jobs/results";
import { CreateJobSchema, type CreateJob } from "../../src/jobs/spec";
import type { Delivery, JobEvent, JobStatus } from "../../src/schemas/job";
import { takeCallback } from "./callback";
import { FollowUps } from "./follow-ups";
import { JobLedger, TERMINAL } from "./ledger";
import { Outbox } from "./outbox";
import { LiveProgress, PROGRESS_TIMEOUT_MS, taskIdOf } from "./progress";
import { Retention } from "./retention";
import { InstanceMemory, type JobRoom } from "./room";
import { AttemptRunner } from "./runner";
import { Settler } from "./settle";
import { RENEW_MS, Slots } from "./slots";
import { finish } from "./transitions";
import { keepCredentials } from "./credentials";
import { SubscriberFeed } from "./subscriber";
import { canceledCallRuns } from "./lost-call";
import { linesOf, parseInput, type AttemptRow, type JobRow } from "./tables";
import { snapshot } from "./view";
import type { JobRpc } from "../../src/contracts/rpc";
import { withDeadline } from "../../src/lib/deadline";

/**
 * While a synchronous call is in flight the alarm beats this often: it enforces the deadline
 * during the call, renews the slot, and after a restart finds the call lost within this time.
 */
const HEARTBEAT_MS = 5_000;
/**
 * What is due at once is done by the step that follows (see `reschedule`); the alarm only backs
 * that step up, this far ahead, rather than firing at once for the same work.
 */
const STEP_BACKSTOP_MS = 5_000;
/** A step that failed (a configuration that does not parse) is tried again this much later, not at once and again. */
const FAILED_STEP_RETRY_MS = 10_000;
/**
 * An alarm already set up to this much before the time wanted is left as it is: it fires a step
 * that finds nothing due and sets the next one. Setting it is a storage write, and most steps of a
 * short job would only move it by the milliseconds since the last.
 */
const ALARM_SLACK_MS = 1_000;
/** A long-poll never waits longer than this, whatever it asks for. */
const MAX_WAIT_MS = 60_000;

/**
 * One job: its RPC surface, and the one serialized step that the one alarm backs, so a restart
 * loses nothing. The work is done by its parts: the ledger (every write), the attempt runner,
 * the settler, the outbox and retention (see the README's Architecture).
 */
export class JobObject extends DurableObject<Env> implements JobRpc {
  /** The last step queued (see `step`): steps run one after another. */
  private stepping: Promise<void> = Promise.resolve();
  private readonly waiters = new Set<() => void>();
  private readonly ledger: JobLedger;
  private readonly room: JobRoom;
  private readonly outbox: Outbox;
  private readonly retention: Retention;
  private readonly progress: LiveProgress;
  private readonly settler: Settler;
  private readonly runner: AttemptRunner;
  private readonly feed: SubscriberFeed;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.ledger = new JobLedger(ctx.storage, () => {
      for (const wake of [...this.waiters]) wake();
      this.feed.poke();
    });
    this.room = { ctx, env, ledger: this.ledger, memory: new InstanceMemory(), followUps: new FollowUps(ctx), reschedule: (stepFollows) => this.reschedule(stepFollows) };
    this.outbox = new Outbox(this.room);
    this.retention = new Retention(this.room);
    this.feed = new SubscriberFeed(this.room);
    this.progress = new LiveProgress(this.room, this.feed);
    const slots = new Slots(this.room);
    this.settler = new Settler(this.room, slots);
    this.runner = new AttemptRunner(this.room, slots, this.progress, this.settler, () => this.step());
  }

  // ---- RPC: reads ----

  /** Creates the job once; a second call with the same id answers the existing job. */
  async create(raw: CreateJob): Promise<{ snapshot: JobSnapshot; created: boolean }> {
    const existing = this.ledger.row();
    if (existing) return { snapshot: await this.snapshot(existing), created: false };
    const { credentials, ...input } = CreateJobSchema.parse(raw);
    // Before anything is written, so that its request does not wait for the creation's commit.
    this.runner.open(input);
    this.ledger.create(input, input.created_at ?? Date.now());
    keepCredentials(this.ctx.storage, credentials);
    await this.reschedule(true);
    // The answer shows the job as created; its dispatch starts after.
    const created = await this.snapshot(this.ledger.mustRow());
    this.kick();
    return { snapshot: created, created: true };
  }

  /** `full`: with the large pass-through fields a dialect echoes in a finished job's answer (read from R2). */
  async get(tenant: string, opts: { full?: boolean } = {}): Promise<Result<{ snapshot: JobSnapshot }>> {
    const row = this.mine(tenant);
    if (!row) return notFound();
    return { ok: true, snapshot: await this.snapshot(row, opts) };
  }

  /**
   * A read of the job as a stream of outputs (RunPod's `/stream`): the job as it is, and whether
   * this read takes its output. Each success's output is handed out once, to the first read after
   * it; the reads after find the stream empty, which is how a reader knows it has everything.
   */
  async readStream(tenant: string): Promise<Result<{ snapshot: JobSnapshot; output: boolean }>> {
    const row = this.mine(tenant);
    if (!row) return notFound();
    const output = row.status === "succeeded" && this.ledger.takeStreamed(row.completed_at ?? 0);
    return { ok: true, snapshot: await this.snapshot(row, { full: true }), output };
  }

  async events(tenant: string, afterSeq = 0): Promise<Result<{ events: JobEvent[]; terminal: boolean }>> {
    const row = this.mine(tenant);
    if (!row) return notFound();
    return { ok: true, events: this.ledger.eventsAfter(afterSeq), terminal: TERMINAL.has(row.status) };
  }

  /**
   * Long-poll: answers as soon as there are events after `afterSeq` or the job has ended, or
   * when `timeoutMs` passes. Synchronous dialects and Server-Sent Events wait on this.
   */
  async waitForChange(tenant: string, afterSeq: number, timeoutMs: number, opts: { full?: boolean } = {}): Promise<Result<{ events: JobEvent[]; snapshot: JobSnapshot; terminal: boolean }>> {
    const deadline = Date.now() + Math.min(timeoutMs, MAX_WAIT_MS);
    for (;;) {
      const row = this.mine(tenant);
      if (!row) return notFound();
      const events = this.ledger.eventsAfter(afterSeq);
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
    if (!this.mine(tenant)) return notFound();
    return { ok: true, deliveries: this.outbox.log() };
  }

  /** See LiveProgress.live: null figures before the job runs and after it ends. */
  async liveProgress(tenant: string, opts: { image: boolean }): Promise<Result<{ status: JobStatus; progress: BackendProgress | null; image: string | null }>> {
    const row = this.mine(tenant);
    if (!row) return notFound();
    return { ok: true, ...(await this.progress.live(row, opts)) };
  }

  // ---- RPC: changes ----

  /** Passes A1111's skip to the backend running this job's attempt; false when there is none that can. */
  async skip(tenant: string): Promise<Result<{ skipped: boolean }>> {
    const row = this.mine(tenant);
    if (!row) return notFound();
    const attempt = this.ledger.currentAttempt();
    const backend = attempt && row.status === "running" ? config.backend(this.env, attempt.backend) : undefined;
    const adapter = backend ? adapterFor(backend) : undefined;
    if (!adapter?.skip || !attempt) return { ok: true, skipped: false };
    // One skip per attempt: A1111's skip names no task, and a second one that passed its check
    // while the first was ending the task would land on whatever runs next there, a neighbour's.
    if (this.room.memory.skipped === attempt.n) return { ok: true, skipped: true };
    this.room.memory.skipped = attempt.n;
    const skip = adapter.skip.bind(adapter);
    await withDeadline(PROGRESS_TIMEOUT_MS, (signal) => skip({ taskId: taskIdOf(row.id, attempt.n) }, signal)).catch(() => undefined);
    return { ok: true, skipped: true };
  }

  /** `onlyQueued`: cancel only a job no backend has started (RunPod's purge-queue). */
  async cancel(tenant: string, onlyQueued = false): Promise<Result<{ snapshot: JobSnapshot }>> {
    const row = this.mine(tenant);
    if (!row) return notFound();
    if (TERMINAL.has(row.status)) return { ok: false, code: "conflict", message: `job is already ${row.status}` };
    if (onlyQueued && row.status !== "queued") return { ok: false, code: "conflict", message: `job is ${row.status}` };
    const attempt = this.ledger.currentAttempt();
    // The job may end otherwise while the cancel's webhook body is rendered: then it stays as it ended.
    if (!(await finish(this.room, "canceled", null, []))) return { ok: false, code: "conflict", message: `job is already ${this.ledger.mustRow().status}` };
    await this.settler.leaveBackend(attempt, await this.runner.linesToLeave(row));
    // Its event goes out now, not at the alarm's next firing.
    this.kick();
    return { ok: true, snapshot: await this.snapshot(this.ledger.mustRow()) };
  }

  /**
   * RunPod's `/retry`: a failed job (a timed-out one too) goes back in the queue under its own id,
   * with a fresh deadline and every backend to try again. The one way out of `failed`; a canceled
   * or succeeded job stays as it is.
   */
  async retry(tenant: string): Promise<Result<{ snapshot: JobSnapshot }>> {
    const row = this.mine(tenant);
    if (!row) return notFound();
    if (row.status !== "failed") return { ok: false, code: "conflict", message: `only a failed or timed-out job can be retried; this one is ${row.status}` };
    // Its index row was made active again first, by the caller (readmitJob: max_active_jobs).
    this.ledger.retry(Date.now());
    await this.reschedule(true);
    const retried = await this.snapshot(this.ledger.mustRow());
    this.kick();
    return { ok: true, snapshot: retried };
  }

  /** Sends the terminal event again: same webhook-id, fresh timestamp and signature. */
  async redeliver(tenant: string): Promise<Result<{ event_id: string }>> {
    const row = this.mine(tenant);
    if (!row) return notFound();
    if (!TERMINAL.has(row.status)) return { ok: false, code: "conflict", message: "the job has not ended yet" };
    const eventId = this.ledger.requeueTerminal();
    if (eventId === undefined) return { ok: false, code: "conflict", message: "the job sent no webhook for its end (no webhook, or its webhook_events leave the end out)" };
    this.outbox.requeued(eventId);
    await this.reschedule(true);
    this.kick();
    return { ok: true, event_id: eventId };
  }

  /**
   * A backend scheduler granted this job a slot (or, its circuit having opened, asks it to look
   * for another backend): answers whether the job takes it. A job that ended, runs elsewhere, left
   * that line or is already taking up another line's grant says no, and the scheduler hands the
   * slot on at once rather than holding it for a claim that would lapse.
   */
  async wake(backend: string): Promise<boolean> {
    const row = this.ledger.row();
    if (!row || TERMINAL.has(row.status)) return false;
    const attempt = this.ledger.currentAttempt();
    // The slot its own attempt holds there is not given away.
    if (attempt) return attempt.backend === backend;
    if (!this.room.memory.lines(linesOf(row)).includes(backend)) return false;
    const taking = this.room.memory.grantedBy;
    if (taking !== undefined && taking !== backend) return false;
    // Taken up by a step at once, with nothing written first: were this instance lost before
    // that, the claim lapses at the scheduler, which puts the job back in line and wakes it again.
    this.room.memory.grantedBy = backend;
    // The creation's request to this line was answered before this grant: the dispatch asks again.
    if (this.room.memory.opening?.backend === backend) this.room.memory.opening = undefined;
    this.kick();
    return true;
  }

  /**
   * Whether this job's attempt holds a slot at `backend` (its scheduler asks when the lease lapsed):
   * an attempt under way there, its call in flight or lost with a restart, still occupies the GPU.
   * So may the call of an ended job that was still out when it ended (canceled, timed out: an
   * upscale or a Cerebrium call cannot be stopped) and that a restart cut since, leaving nothing
   * here to settle it: while the backend says it runs it (see lost-call.ts), at most until the
   * backend's timeout after the call began.
   */
  async holdsSlot(backend: string): Promise<boolean> {
    const row = this.ledger.row();
    if (!row) return false;
    if (!TERMINAL.has(row.status)) return this.ledger.currentAttempt()?.backend === backend;
    const last = this.ledger.attempt(this.ledger.nextAttemptNumber() - 1);
    const b = config.backend(this.env, backend);
    if (last?.backend !== backend || last.state !== "canceled" || !b) return false;
    return this.leftCallRuns(row, last, b);
  }

  /**
   * Whether attempt `n`'s generation may still occupy `backend`: its scheduler keeps the slot of a
   * call the job left running there (canceled, the stop not confirmed) under the attempt's name, and
   * asks again now and then, so the slot goes back once the backend no longer runs it rather than
   * at the backend's timeout after the call began.
   */
  async attemptRuns(backend: string, n: number): Promise<boolean> {
    const row = this.ledger.row();
    const attempt = row ? this.ledger.attempt(n) : undefined;
    const b = config.backend(this.env, backend);
    if (!row || attempt?.backend !== backend || !b) return false;
    return this.leftCallRuns(row, attempt, b);
  }

  /** A call still out here is settled by its own end; one a restart cut is asked about (and stopped again). */
  private leftCallRuns(row: JobRow, attempt: AttemptRow, b: BackendConfig): Promise<boolean> {
    if (this.room.memory.inflight === attempt.n) return Promise.resolve(true);
    return canceledCallRuns(b, { taskId: taskIdOf(row.id, attempt.n), externalId: attempt.external_id ?? undefined, askable: parseInput(row).spec.type !== "upscale", startedAt: attempt.started_at });
  }

  /** A completion callback from an asynchronous backend; a forged or replayed one changes nothing. */
  async backendCallback(attemptN: number, token: string, headers: [string, string][], staged: CallbackBody): Promise<{ accepted: boolean }> {
    const { accepted, settled } = await takeCallback(this.room, this.settler, attemptN, token, headers, staged);
    // The terminal event, or the next attempt, goes out now.
    if (settled) this.kick();
    return { accepted };
  }

  // ---- the alarm: one step for dispatch, polling, deadlines, webhook delivery and retention ----

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
      if (!this.ledger.row()) return;
      let failed = false;
      try {
        // Inside the step's failure handling: a deletion that cannot read RETENTION_S is tried again, its alarm kept.
        if (await this.retention.purgeIfDue()) return;
      } catch (err) {
        failed = true;
        console.error("job step failed", err instanceof Error ? err.message : String(err));
      }
      try {
        await Promise.all([this.outbox.deliverDue(), this.runner.advance()]);
        // The step above may have ended the job: send its event without waiting for another step.
        await this.outbox.deliverDue();
      } catch (err) {
        failed = true;
        console.error("job step failed", err instanceof Error ? err.message : String(err));
      } finally {
        // Whatever no webhook request went out before.
        this.room.followUps.run();
      }
      await this.reschedule(false, failed ? FAILED_STEP_RETRY_MS : 0);
    });
    this.stepping = next.catch(() => undefined);
    return next;
  }

  /** Runs a step now, beside the caller. */
  private kick(): void {
    this.ctx.waitUntil(this.step().catch((err: unknown) => console.error("job step failed", err instanceof Error ? err.message : String(err))));
  }

  /**
   * One alarm for everything: the earliest of dispatch, poll, heartbeat, deadline, next delivery
   * and deletion. `stepFollows`: a step is about to run (a kick) and sets it again at its end, so
   * the alarm set now is only its backstop, never earlier than STEP_BACKSTOP_MS: a new job's
   * dispatch or an ended job's webhook, due at once, would otherwise also fire the alarm at once,
   * for a second step that finds nothing left to do. `notBeforeMs`: after a failed step.
   */
  private async reschedule(stepFollows = false, notBeforeMs = 0): Promise<void> {
    const row = this.ledger.row();
    if (!row) return;
    const times: number[] = [];
    const head = this.ledger.outboxHead();
    if (head?.next_at != null) times.push(head.next_at);
    if (!TERMINAL.has(row.status)) {
      times.push(row.deadline_at);
      if (row.dispatch_at !== null) times.push(row.dispatch_at);
      const attempt = this.ledger.currentAttempt();
      if (attempt?.state === "pending" && attempt.poll_at !== null) times.push(attempt.poll_at);
      if (attempt?.state === "running") times.push(Date.now() + HEARTBEAT_MS);
      if (attempt?.state === "pending") times.push(Date.now() + RENEW_MS);
    } else {
      // Ended with a call still out: its slot is renewed until the call ends (see the runner's advance).
      if (this.room.memory.inflight !== undefined) times.push(Date.now() + HEARTBEAT_MS);
      // Ended, its events sent: the next thing due is its deletion (tried again later while RETENTION_S does not parse).
      if (head === undefined && row.completed_at !== null) times.push(this.deletionDueAt(row.completed_at));
    }
    if (!times.length) return this.ctx.storage.deleteAlarm();
    const min = Math.min(...times);
    const at = Math.max(min, Date.now() + (stepFollows ? STEP_BACKSTOP_MS : notBeforeMs));
    const current = await this.ctx.storage.getAlarm();
    if (current !== null && current <= at && current >= at - ALARM_SLACK_MS) return;
    await this.ctx.storage.setAlarm(at);
  }

  private deletionDueAt(completedAt: number): number {
    try {
      return this.retention.dueAt(completedAt);
    } catch {
      return Date.now() + FAILED_STEP_RETRY_MS;
    }
  }

  /**
   * The tenant's job, unless it is past `RETENTION_S` (lowered since its deletion was scheduled):
   * then it is gone to every caller already, and its deletion runs at once rather than at the
   * alarm set under the longer retention.
   */
  private mine(tenant: string): Readonly<JobRow> | undefined {
    const row = this.ledger.owned(tenant);
    if (!row?.completed_at || !this.retention.expired(row.completed_at) || this.ledger.pendingWebhooks() > 0) return row;
    this.ctx.waitUntil(this.ctx.storage.setAlarm(Date.now()));
    return undefined;
  }

  private snapshot(row: Parameters<typeof snapshot>[2], opts: { full?: boolean } = {}): Promise<JobSnapshot> {
    return snapshot(this.env, this.ledger, row, opts);
  }
}

const notFound = (): { ok: false; code: "not_found"; message: string } => ({ ok: false, code: "not_found", message: "job not found" });

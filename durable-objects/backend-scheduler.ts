import { DurableObject } from "cloudflare:workers";
import { config, type BackendConfig } from "../src/config";
import type { Env } from "../src/env";
import { jobStub } from "../src/jobs/client";
import { BackendCatalog, configKey } from "./backend-catalog";
import { BackendCircuit } from "./backend-circuit";
import { alarmBy } from "./alarms";
import { BackendLeases } from "./backend-leases";
import { BackendLine } from "./backend-line";
import { BackendListings } from "./backend-listings";
import { RecentAttempts } from "./backend-recent";
import { BackendRescans } from "./backend-rescans";
import { type AcquireResult, type AttemptOutcome, type BackendStatus, type CatalogAnswer, type ComfyListing, type ReleaseOutcome, type RescanKind } from "../src/contracts/scheduler";
import type { SchedulerRpc } from "../src/contracts/rpc";

/**
 * A slot granted to the head of the line is only a claim until its job takes it (its next acquire).
 * A wake-up that is lost, or a job that cannot start, gives the slot back after this long, and the
 * job goes back into line (at the back of its tenant's) to be offered a slot again.
 */
export const CLAIM_MS = 10_000;
/**
 * When the circuit opens, the jobs waiting then are woken this many at a time, one batch per
 * alarm, so each can look for another backend; a job with none stays in line (see `scatter`).
 */
export const SCATTER_BATCH = 16;
const SCATTER_EVERY_MS = 200;

/**
 * One per GPU backend: grants at most `max_concurrency` slots, queues the rest FIFO per tenant
 * with round-robin between tenants, and keeps the backend's circuit breaker. Slots are leases,
 * so a job that vanished mid-run cannot hold one forever.
 */
export class BackendScheduler extends DurableObject<Env> implements SchedulerRpc {
  private readonly sql: SqlStorage;
  private readonly catalog: BackendCatalog;
  private readonly line: BackendLine;
  private readonly circuit: BackendCircuit;
  private readonly recent: RecentAttempts;
  private readonly listings = new BackendListings();
  private readonly rescans: BackendRescans;
  private readonly leases: BackendLeases;
  /** Requests from jobs (acquire, release, judge, renew, orphan) since this instance started. */
  private requests = 0;
  /** The limits and name this instance last wrote (see acquire): most acquires carry the same. */
  private applied: string | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.catalog = new BackendCatalog(this.sql);
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS slots (job_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, lease_until INTEGER NOT NULL, probe INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS claims (job_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, lease_ms INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS scatter (id INTEGER PRIMARY KEY CHECK (id = 1), after_seq INTEGER NOT NULL, upto_seq INTEGER NOT NULL, due_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS limits (id INTEGER PRIMARY KEY CHECK (id = 1), max_concurrency INTEGER NOT NULL, cooldown_ms INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS identity (id INTEGER PRIMARY KEY CHECK (id = 1), backend TEXT NOT NULL);
      INSERT OR IGNORE INTO limits (id, max_concurrency, cooldown_ms) VALUES (1, 1, 30000);
    `);
    this.line = new BackendLine(this.sql);
    this.circuit = new BackendCircuit(this.sql);
    this.recent = new RecentAttempts(this.sql);
    this.rescans = new BackendRescans(this.sql);
    this.leases = new BackendLeases(this.sql, this.line, env);
  }

  /** Slots held (at most `max_concurrency`, plus orphaned generations): a small table. */
  private active(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM slots").one().n;
  }

  private grant(jobId: string, tenant: string, leaseMs: number, now: number, probe: boolean): void {
    this.sql.exec("INSERT OR REPLACE INTO slots (job_id, tenant, lease_until, probe) VALUES (?, ?, ?, ?)", jobId, tenant, now + leaseMs, probe ? 1 : 0);
    this.line.served(tenant);
    this.line.leave(jobId);
    this.recent.granted(jobId, now);
  }

  /** The job holds its slot itself now (or no longer waits for one): not a claim any more. */
  private settled(jobId: string): void {
    this.sql.exec("DELETE FROM claims WHERE job_id = ?", jobId);
    this.line.leave(jobId);
  }

  /**
   * Asks for a slot; with `enqueue` the job waits in line and is woken when its turn comes. A job
   * may wait in the lines of several backends at once: the first to grant it wins, and a grant
   * another line made meanwhile is answered no (see grantWaiting) or given back by its release.
   */
  async acquire(req: { backend: string; jobId: string; tenant: string; maxConcurrency: number; cooldownMs: number; leaseMs: number; enqueue: boolean }): Promise<AcquireResult> {
    this.requests++;
    const now = Date.now();
    // The backend's limits (and name, for wake-ups) come from configuration, which the jobs carry here.
    // Written only when changed: most acquires carry what this instance already wrote.
    const applied = `${req.maxConcurrency}/${req.cooldownMs}/${req.backend}`;
    let raised = false;
    if (applied !== this.applied) {
      raised = req.maxConcurrency > this.sql.exec<{ max_concurrency: number }>("SELECT max_concurrency FROM limits WHERE id = 1").one().max_concurrency;
      this.sql.exec("UPDATE limits SET max_concurrency = ?1, cooldown_ms = ?2 WHERE id = 1 AND (max_concurrency != ?1 OR cooldown_ms != ?2)", req.maxConcurrency, req.cooldownMs);
      this.sql.exec("INSERT INTO identity (id, backend) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET backend = excluded.backend WHERE backend != excluded.backend", req.backend);
      this.applied = applied;
    }
    this.leases.reclaimExpired(now);
    // A raised max_concurrency (an operator's deploy) hands its new slots to the line at once, not at the next release.
    if (raised) await this.grantWaiting(now);
    const held = this.sql.exec("SELECT job_id FROM slots WHERE job_id = ?", req.jobId).toArray();
    if (held.length) {
      // A claim from the line becomes a full lease once its job takes it.
      this.sql.exec("UPDATE slots SET lease_until = ? WHERE job_id = ?", now + req.leaseMs, req.jobId);
      this.settled(req.jobId);
      await this.alarmBy(now + req.leaseMs);
      return { status: "granted", probe: false };
    }
    const h = this.circuit.health();
    // Free capacity goes to whoever is next in line, so a newcomer never jumps the queue.
    const next = this.line.next()?.job_id;
    const first = next === undefined || next === req.jobId;
    if (h.open_until !== null) {
      // Half-open after the cool-down: exactly one probe job may try the backend, the line's head
      // first, and only into a free slot (a healthy generation may still hold them all).
      if (now >= h.open_until && !this.probing() && first && this.active() < req.maxConcurrency) {
        this.grant(req.jobId, req.tenant, req.leaseMs, now, true);
        await this.alarmBy(now + req.leaseMs);
        return { status: "granted", probe: true };
      }
      // A job with nowhere else to go waits in line through the cool-down, woken when its turn comes.
      if (req.enqueue) return this.enqueue(req);
      return { status: "open", retry_at: Math.max(h.open_until, now + 1000) };
    }
    const active = this.active();
    if (active < req.maxConcurrency && first) {
      this.grant(req.jobId, req.tenant, req.leaseMs, now, false);
      await this.alarmBy(now + req.leaseMs);
      return { status: "granted", probe: false };
    }
    if (!req.enqueue) return { status: "busy", load: (active + this.line.size()) / req.maxConcurrency };
    return this.enqueue(req);
  }

  private async enqueue(req: { jobId: string; tenant: string; leaseMs: number }): Promise<AcquireResult> {
    this.line.join(req.jobId, req.tenant, req.leaseMs);
    await this.reschedule();
    return { status: "queued" };
  }

  /** Gives a slot back, records how the attempt went, and hands free slots to the next in line. */
  async release(jobId: string, outcome: ReleaseOutcome, unreachable = false): Promise<void> {
    this.requests++;
    const now = Date.now();
    const slot = this.sql.exec<{ probe: number; tenant: string }>("SELECT probe, tenant FROM slots WHERE job_id = ?", jobId).toArray()[0];
    this.sql.exec("DELETE FROM slots WHERE job_id = ?", jobId);
    this.settled(jobId);
    if (slot) this.recent.record(jobId, outcome === "later" ? (slot.probe === 1 ? "awaiting_probe" : "awaiting") : outcome, now);
    if (slot && outcome !== "later") this.applyVerdict(outcome, slot.probe === 1, now, slot.tenant, unreachable);
    await this.grantWaiting(now);
  }

  /**
   * The verdict on an attempt whose slot went back early (`release(..., "later")`): a 200 whose
   * body held no images is a failure like any other, for the circuit and the recent figures.
   */
  async judge(jobId: string, outcome: AttemptOutcome, tenant: string): Promise<void> {
    this.requests++;
    const awaited = this.recent.settle(jobId, outcome);
    if (!awaited) return;
    this.applyVerdict(outcome, awaited === "awaiting_probe", Date.now(), tenant);
    await this.grantWaiting(Date.now());
  }

  /**
   * The circuit weighs the verdict (durable-objects/backend-circuit.ts). The line stays as it is: the
   * slots a closing frees go to it like every other slot; an opening tells it, in batches (see scatter).
   */
  private applyVerdict(outcome: AttemptOutcome, probe: boolean, now: number, tenant: string, unreachable = false): void {
    const change = this.circuit.judge({
      outcome,
      probe,
      tenant,
      unreachable,
      now,
      tenants: () => config.tenants(this.env).size,
      cooldownMs: () => this.sql.exec<{ cooldown_ms: number }>("SELECT cooldown_ms FROM limits WHERE id = 1").one().cooldown_ms,
    });
    if (change === "closed") this.sql.exec("DELETE FROM scatter");
    if (change === "opened") this.sql.exec("INSERT OR REPLACE INTO scatter (id, after_seq, upto_seq, due_at) VALUES (1, 0, ?, ?)", this.line.lastSeq(), now);
  }

  /**
   * Keeps the slot of a job whose generation is still under way here (the job's heartbeat). A
   * slot that was reclaimed meanwhile is taken again: the GPU is busy with that job either way.
   */
  async renew(jobId: string, tenant: string, leaseMs: number): Promise<void> {
    this.requests++;
    const now = Date.now();
    const slot = this.sql.exec<{ probe: number }>("SELECT probe FROM slots WHERE job_id = ?", jobId).toArray()[0];
    this.sql.exec("INSERT OR REPLACE INTO slots (job_id, tenant, lease_until, probe) VALUES (?, ?, ?, ?)", jobId, tenant, now + leaseMs, slot?.probe ?? 0);
    this.settled(jobId);
    await this.alarmBy(now + leaseMs);
  }

  /**
   * The job no longer owns its slot, but a generation it started may still be running on the
   * GPU (a call lost in a restart, a canceled run the backend cannot stop): the slot stays taken,
   * under another name, until that generation cannot be running any more: the backend's timeout
   * after it began (no estimate from recent runs: one slow run past it would exceed
   * `max_concurrency`), or until the job says the backend no longer runs it (see BackendLeases).
   * The job may meanwhile ask for a new slot here; it waits like anyone else.
   */
  async orphan(jobId: string, attempt: number, startedAt: number, timeoutMs: number, verdict?: AttemptOutcome): Promise<void> {
    this.requests++;
    const until = startedAt + timeoutMs;
    const slot = this.sql.exec<{ tenant: string; probe: number }>("SELECT tenant, probe FROM slots WHERE job_id = ?", jobId).toArray()[0];
    this.sql.exec("DELETE FROM slots WHERE job_id = ?", jobId);
    this.settled(jobId);
    // The attempt's own release will find no slot under its name: its verdict is recorded here.
    if (slot && verdict) {
      const now = Date.now();
      this.recent.record(jobId, verdict, now);
      this.applyVerdict(verdict, slot.probe === 1, now, slot.tenant);
    }
    if (slot && until > Date.now()) await this.alarmBy(this.leases.orphan(jobId, attempt, slot.tenant, until, Date.now()));
    await this.grantWaiting(Date.now());
  }

  async status(): Promise<BackendStatus> {
    // A look at the backend checks its alarm too: one lost with a hard restart is set again (see alarmBy).
    await this.reschedule();
    const h = this.circuit.health();
    const now = Date.now();
    const circuit = h.open_until === null ? "closed" : now < h.open_until ? "open" : "half_open";
    return {
      active: this.active(),
      waiting: this.line.size(),
      consecutive_failures: h.failures,
      open_until: h.open_until,
      circuit,
      recent: this.recent.figures(),
      requests: this.requests,
    };
  }

  /** The backend's model list, kept here for the whole deployment (durable-objects/backend-catalog.ts). */
  async models(b: BackendConfig, waitMs: number): Promise<CatalogAnswer> {
    return this.catalog.read(b, waitMs);
  }

  /**
   * A1111's refresh-checkpoints / refresh-loras on this backend: returns once a rescan under way or
   * begun after the call has ended, at most one per interval for the deployment, callers at the same
   * time sharing one (durable-objects/backend-rescans.ts); its checkpoints listed afresh after.
   */
  async rescan(b: BackendConfig, what: RescanKind): Promise<boolean> {
    return this.rescans.run(b, await configKey(b), what, () => (what === "checkpoints" ? this.catalog.refresh(b) : Promise.resolve()));
  }

  /** A ComfyUI server's listing, kept here for the deployment (durable-objects/backend-listings.ts). */
  async listing(b: BackendConfig, path: ComfyListing): Promise<string | undefined> {
    return this.listings.read(b, await configKey(b), path);
  }

  override async alarm(): Promise<void> {
    // An alarm may fire a hair early; what falls due within this slack is handled now. Slots are
    // granted at the real time: a grant dated ahead would make its run look shorter than it was.
    const due = Date.now() + 250;
    this.leases.reclaimExpired(due);
    const lapsed = this.leases.lapsed(due);
    await this.scatter(due);
    if (lapsed.length) await this.leases.checkLapsed(lapsed, due, this.sql.exec<{ backend: string }>("SELECT backend FROM identity WHERE id = 1").toArray()[0]?.backend);
    await this.grantWaiting(Date.now(), due);
    // The runtime clears the alarm that fired: it is set again for what is left.
    await this.reschedule(true);
  }

  private probing(): boolean {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM slots WHERE probe = 1").one().n > 0;
  }

  /**
   * Hands free slots to the line, each as a short claim, and asks each woken job whether it still
   * wants its slot: one that ended, runs elsewhere or takes up another line's grant says no, and its slot goes to the next in
   * line at once. A wake-up that is lost leaves a claim that lapses after CLAIM_MS: the alarm
   * reclaims it, puts the job back in line and offers the slot to the next, so a waiting job
   * needs no re-check of its own. Slots are granted at `now`; `due` (the alarm's slack) says
   * whether a cool-down is over.
   */
  private async grantWaiting(now: number, due = now): Promise<void> {
    // Nobody waits: nothing to hand out, and a slot that went back makes nothing due sooner.
    if (!this.line.size()) return;
    const max = this.sql.exec<{ max_concurrency: number }>("SELECT max_concurrency FROM limits WHERE id = 1").one().max_concurrency;
    const backend = this.sql.exec<{ backend: string }>("SELECT backend FROM identity WHERE id = 1").toArray()[0]?.backend;
    // Bounded: every round removes at least one job from the line.
    for (;;) {
      const h = this.circuit.health();
      const granted: string[] = [];
      const grantNext = (probe: boolean): boolean => {
        const next = this.line.next();
        if (!next) return false;
        this.grant(next.job_id, next.tenant, CLAIM_MS, now, probe);
        this.sql.exec("INSERT OR REPLACE INTO claims (job_id, tenant, lease_ms) VALUES (?, ?, ?)", next.job_id, next.tenant, next.lease_ms);
        granted.push(next.job_id);
        return true;
      };
      if (h.open_until === null) {
        // Bounded by the free slots.
        while (this.active() < max && grantNext(false));
      } else if (due >= h.open_until && !this.probing() && this.active() < max) {
        // Half-open: one waiting job probes the backend, in a free slot; its outcome opens or closes the circuit.
        grantNext(true);
      }
      await this.reschedule();
      if (!granted.length || backend === undefined) return;
      const answers = await Promise.all(granted.map(async (jobId) => ({ jobId, wants: await this.ask(jobId, backend) })));
      const unwanted = answers.filter((a) => a.wants === false).map((a) => a.jobId);
      if (!unwanted.length) return;
      for (const jobId of unwanted) {
        // Only a claim still untaken goes back: a job may take it (its dispatch's acquire) while
        // its answer is on the way, a "no" given for another line's grant. Its generation then
        // runs here, and freeing its slot would let one more job start than max_concurrency.
        this.sql.exec("DELETE FROM slots WHERE job_id = ? AND job_id IN (SELECT job_id FROM claims)", jobId);
        this.sql.exec("DELETE FROM claims WHERE job_id = ?", jobId);
      }
      now = Date.now();
      due = Math.max(due, now);
    }
  }

  /** Whether the job takes the slot it was granted; `undefined` when it could not be asked. */
  private async ask(jobId: string, backend: string): Promise<boolean | undefined> {
    try {
      return await jobStub(this.env, jobId).wake(backend);
    } catch {
      return undefined;
    }
  }

  /**
   * While the circuit is open, the jobs that were waiting when it opened are told, SCATTER_BATCH
   * per alarm, so each can dispatch again and move to another backend. They keep their place
   * here meanwhile: a job with no other backend (a pinned one) stays, and is offered the probe or
   * a slot when its turn comes. Jobs that join during the cool-down chose this line knowing.
   */
  private async scatter(now: number): Promise<void> {
    const s = this.sql.exec<{ after_seq: number; upto_seq: number; due_at: number }>("SELECT after_seq, upto_seq, due_at FROM scatter WHERE id = 1").toArray()[0];
    const backend = this.sql.exec<{ backend: string }>("SELECT backend FROM identity WHERE id = 1").toArray()[0]?.backend;
    if (!s || s.due_at > now) return;
    const batch = this.line.range(s.after_seq, s.upto_seq, SCATTER_BATCH);
    const last = batch.at(-1);
    if (batch.length < SCATTER_BATCH || !last) this.sql.exec("DELETE FROM scatter");
    else this.sql.exec("UPDATE scatter SET after_seq = ?, due_at = ? WHERE id = 1", last.seq, Date.now() + SCATTER_EVERY_MS);
    if (backend !== undefined) await Promise.all(batch.map((j) => this.ask(j.job_id, backend)));
  }

  /**
   * One alarm: the earliest lease expiry (to reclaim it), the end of an open circuit's cool-down
   * while jobs wait, or the next batch of a scatter. It is only ever moved earlier, never deleted:
   * an alarm left with nothing to do fires once and finds nothing, which costs less than a storage
   * write on every grant and release (each of which would move it). `afresh` after one fired.
   */
  private async reschedule(afresh = false): Promise<void> {
    const lease = this.sql.exec<{ t: number | null }>("SELECT MIN(lease_until) AS t FROM slots").one().t;
    const h = this.circuit.health();
    const waiting = this.line.size();
    const scatter = this.sql.exec<{ due_at: number }>("SELECT due_at FROM scatter").toArray()[0]?.due_at ?? null;
    const now = Date.now();
    // A cool-down already over is no time to wake for while the probe waits for a free slot (the
    // release or lapse that frees it hands it out); a probe owed now (the line waiting, no probe
    // out, a slot free: its alarm lost) is due now.
    const owed = () => !this.probing() && this.active() < this.sql.exec<{ max_concurrency: number }>("SELECT max_concurrency FROM limits WHERE id = 1").one().max_concurrency;
    const cooling = !waiting || h.open_until === null ? null : h.open_until > now ? h.open_until : owed() ? now : null;
    const times = [lease, cooling, scatter].filter((t): t is number => t !== null);
    if (!times.length) return;
    // Never the past, nor the time that just fired: set again to the same time, workerd keeps the
    // stored alarm but drops its schedule when the handler ends (the alarm is lost); a past time
    // would fire again at once, and again.
    if (afresh) await this.ctx.storage.setAlarm(Math.max(Math.min(...times), now) + 1);
    else await this.alarmBy(Math.min(...times));
  }

  /**
   * The alarm no later than `time` (just after it): moved only if it is set later or not at all.
   * After one new time (a lease granted or renewed, an orphan's end) this alone will do: every
   * earlier time already set it no later than itself (see reschedule).
   */
  private async alarmBy(time: number): Promise<void> {
    await alarmBy(this.ctx.storage, time + 1);
  }
}

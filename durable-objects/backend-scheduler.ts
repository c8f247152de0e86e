import { DurableObject } from "cloudflare:workers";
import type { ModelInfo } from "../src/backends/types";
import type { BackendConfig } from "../src/config";
import type { Env } from "../src/env";
import { jobStub } from "../src/jobs/client";
import { BackendCatalog } from "./backend-catalog";
import type { AcquireResult, AttemptOutcome, BackendStatus, CatalogAnswer, ReleaseOutcome } from "../src/contracts/scheduler";

/** Consecutive failures that open a backend's circuit. */
export const CIRCUIT_THRESHOLD = 3;
/**
 * A slot granted to the head of the line is only a claim until its job takes it (its next acquire).
 * A wake-up that is lost, or a job that cannot start, gives the slot back after this long.
 */
export const CLAIM_MS = 10_000;
/** An orphaned generation is presumed over after twice the longest recent run, but never sooner than this. */
const ORPHAN_FLOOR_MS = 15_000;

/** How many recent attempts the backend's figures are taken over. */
export const RECENT_ATTEMPTS = 100;

/**
 * One per GPU backend: grants at most `max_concurrency` slots, queues the rest FIFO per tenant
 * with round-robin between tenants, and keeps the backend's circuit breaker. Slots are leases,
 * so a job that vanished mid-run cannot hold one forever.
 */
export class BackendScheduler extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly catalog: BackendCatalog;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.catalog = new BackendCatalog(this.sql);
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS slots (job_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, lease_until INTEGER NOT NULL, probe INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS waiting (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL, lease_ms INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS tenants (tenant TEXT PRIMARY KEY, last_grant INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY CHECK (id = 1), failures INTEGER NOT NULL, open_until INTEGER);
      CREATE TABLE IF NOT EXISTS limits (id INTEGER PRIMARY KEY CHECK (id = 1), max_concurrency INTEGER NOT NULL, cooldown_ms INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS recent (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, granted_at INTEGER NOT NULL, outcome TEXT, run_ms INTEGER);
      CREATE TABLE IF NOT EXISTS identity (id INTEGER PRIMARY KEY CHECK (id = 1), backend TEXT NOT NULL);
      INSERT OR IGNORE INTO health (id, failures, open_until) VALUES (1, 0, NULL);
      INSERT OR IGNORE INTO limits (id, max_concurrency, cooldown_ms) VALUES (1, 1, 30000);
    `);
  }

  private health(): { failures: number; open_until: number | null } {
    return this.sql.exec<{ failures: number; open_until: number | null }>("SELECT failures, open_until FROM health WHERE id = 1").one();
  }

  private count(table: "slots" | "waiting"): number {
    return this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
  }

  private grant(jobId: string, tenant: string, leaseMs: number, now: number, probe: boolean): void {
    this.sql.exec("INSERT OR REPLACE INTO slots (job_id, tenant, lease_until, probe) VALUES (?, ?, ?, ?)", jobId, tenant, now + leaseMs, probe ? 1 : 0);
    this.sql.exec("INSERT OR REPLACE INTO tenants (tenant, last_grant) VALUES (?, ?)", tenant, now);
    this.sql.exec("DELETE FROM waiting WHERE job_id = ?", jobId);
    this.sql.exec("INSERT INTO recent (job_id, granted_at) VALUES (?, ?)", jobId, now);
  }

  /**
   * Asks for a slot; with `enqueue` the job waits in line and is woken when its turn comes. A job
   * waits in one line at a time: the job object leaves a line before it joins another.
   */
  async acquire(req: { backend: string; jobId: string; tenant: string; maxConcurrency: number; cooldownMs: number; leaseMs: number; enqueue: boolean }): Promise<AcquireResult> {
    const now = Date.now();
    // The backend's limits (and name, for wake-ups) come from configuration, which the jobs carry here.
    this.sql.exec("UPDATE limits SET max_concurrency = ?, cooldown_ms = ? WHERE id = 1", req.maxConcurrency, req.cooldownMs);
    this.sql.exec("INSERT OR REPLACE INTO identity (id, backend) VALUES (1, ?)", req.backend);
    this.reclaimExpired(now);
    const held = this.sql.exec("SELECT job_id FROM slots WHERE job_id = ?", req.jobId).toArray();
    if (held.length) {
      // A claim from the line becomes a full lease once its job takes it.
      this.sql.exec("UPDATE slots SET lease_until = ? WHERE job_id = ?", now + req.leaseMs, req.jobId);
      await this.reschedule();
      return { status: "granted", probe: false };
    }
    const h = this.health();
    if (h.open_until !== null) {
      // Half-open after the cool-down: exactly one probe job may try the backend.
      if (now < h.open_until || this.probing()) return { status: "open", retry_at: Math.max(h.open_until, now + 1000) };
      this.grant(req.jobId, req.tenant, req.leaseMs, now, true);
      await this.reschedule();
      return { status: "granted", probe: true };
    }
    const active = this.count("slots");
    const waiting = this.count("waiting");
    const next = this.nextInLine();
    // Free capacity goes to whoever is next in line, so a newcomer never jumps the queue.
    if (active < req.maxConcurrency && (next === undefined || next === req.jobId)) {
      this.grant(req.jobId, req.tenant, req.leaseMs, now, false);
      await this.reschedule();
      return { status: "granted", probe: false };
    }
    if (!req.enqueue) return { status: "busy", load: (active + waiting) / req.maxConcurrency };
    this.sql.exec("INSERT OR IGNORE INTO waiting (job_id, tenant, lease_ms) VALUES (?, ?, ?)", req.jobId, req.tenant, req.leaseMs);
    const position = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM waiting WHERE seq <= (SELECT seq FROM waiting WHERE job_id = ?)", req.jobId).one().n;
    return { status: "queued", position };
  }

  /** Gives a slot back, records how the attempt went, and hands free slots to the next in line. */
  async release(jobId: string, outcome: ReleaseOutcome): Promise<void> {
    const now = Date.now();
    const slot = this.sql.exec<{ probe: number }>("SELECT probe FROM slots WHERE job_id = ?", jobId).toArray()[0];
    this.sql.exec("DELETE FROM slots WHERE job_id = ?", jobId);
    this.sql.exec("DELETE FROM waiting WHERE job_id = ?", jobId);
    if (slot) this.record(jobId, outcome === "later" ? (slot.probe === 1 ? "awaiting_probe" : "awaiting") : outcome, now);
    if (slot && outcome !== "later") await this.applyVerdict(outcome, slot.probe === 1, now);
    await this.grantWaiting(now);
  }

  /**
   * The verdict on an attempt whose slot went back early (`release(..., "later")`): a 200 whose
   * body held no images is a failure like any other, for the circuit and the recent figures.
   */
  async judge(jobId: string, outcome: AttemptOutcome): Promise<void> {
    const row = this.sql
      .exec<{ seq: number; outcome: string }>("SELECT seq, outcome FROM recent WHERE job_id = ? AND outcome IN ('awaiting', 'awaiting_probe') ORDER BY seq DESC LIMIT 1", jobId)
      .toArray()[0];
    if (!row) return;
    this.sql.exec("UPDATE recent SET outcome = ? WHERE seq = ?", outcome, row.seq);
    await this.applyVerdict(outcome, row.outcome === "awaiting_probe", Date.now());
    await this.grantWaiting(Date.now());
  }

  /** A success closes the circuit; a failure counts towards opening it (a failed probe opens it again). */
  private async applyVerdict(outcome: AttemptOutcome, probe: boolean, now: number): Promise<void> {
    if (outcome === "success") {
      this.sql.exec("UPDATE health SET failures = 0, open_until = NULL WHERE id = 1");
    } else if (outcome === "failure") {
      const h = this.health();
      const failures = h.failures + 1;
      const open = probe || failures >= CIRCUIT_THRESHOLD;
      const cooldown = this.sql.exec<{ cooldown_ms: number }>("SELECT cooldown_ms FROM limits WHERE id = 1").one().cooldown_ms;
      this.sql.exec("UPDATE health SET failures = ?, open_until = ? WHERE id = 1", failures, open ? now + cooldown : h.open_until);
      if (open && h.open_until === null) {
        // The line here will not move for a while: send everyone in it to look for another backend.
        const line = this.sql.exec<{ job_id: string }>("SELECT job_id FROM waiting").toArray().map((r) => r.job_id);
        this.sql.exec("DELETE FROM waiting");
        await this.wake(line);
      }
    }
  }

  /**
   * Keeps the slot of a job whose generation is still under way here (the job's heartbeat). A
   * slot that was reclaimed meanwhile is taken again: the GPU is busy with that job either way.
   */
  async renew(jobId: string, tenant: string, leaseMs: number): Promise<void> {
    const now = Date.now();
    const slot = this.sql.exec<{ probe: number }>("SELECT probe FROM slots WHERE job_id = ?", jobId).toArray()[0];
    this.sql.exec("INSERT OR REPLACE INTO slots (job_id, tenant, lease_until, probe) VALUES (?, ?, ?, ?)", jobId, tenant, now + leaseMs, slot?.probe ?? 0);
    this.sql.exec("DELETE FROM waiting WHERE job_id = ?", jobId);
    await this.reschedule();
  }

  /**
   * The job no longer owns its slot, but a generation it started may still be running on the
   * GPU (a call lost in a restart, a canceled run the backend cannot stop): the slot stays taken,
   * under another name, until that generation is presumably over: twice the longest of the recent
   * runs here after it began (at least ORPHAN_FLOOR_MS), and at most the backend's timeout (also
   * the bound when nothing has run here yet). The job may meanwhile ask for a new slot here; it
   * waits like anyone else.
   */
  async orphan(jobId: string, attempt: number, startedAt: number, timeoutMs: number): Promise<void> {
    const longest = this.sql
      .exec<{ ms: number | null }>("SELECT MAX(run_ms) AS ms FROM (SELECT run_ms FROM recent WHERE outcome = 'success' ORDER BY seq DESC LIMIT ?)", RECENT_ATTEMPTS)
      .one().ms;
    const until = startedAt + (longest === null ? timeoutMs : Math.min(timeoutMs, Math.max(ORPHAN_FLOOR_MS, 2 * longest)));
    const slot = this.sql.exec<{ tenant: string }>("SELECT tenant FROM slots WHERE job_id = ?", jobId).toArray()[0];
    this.sql.exec("DELETE FROM slots WHERE job_id = ?", jobId);
    this.sql.exec("DELETE FROM waiting WHERE job_id = ?", jobId);
    if (slot && until > Date.now()) this.sql.exec("INSERT OR REPLACE INTO slots (job_id, tenant, lease_until, probe) VALUES (?, ?, ?, 0)", `${jobId}#${attempt}`, slot.tenant, until);
    await this.grantWaiting(Date.now());
  }

  async status(): Promise<BackendStatus> {
    const h = this.health();
    const now = Date.now();
    const circuit = h.open_until === null ? "closed" : now < h.open_until ? "open" : "half_open";
    return { active: this.count("slots"), waiting: this.count("waiting"), consecutive_failures: h.failures, open_until: h.open_until, circuit, recent: this.recentFigures() };
  }

  /** The backend's model list, kept here for the whole deployment (durable-objects/backend-catalog.ts). */
  async models(b: BackendConfig, waitMs: number): Promise<CatalogAnswer> {
    return this.catalog.read(b, waitMs);
  }

  /** Lists the backend's models afresh (A1111's refresh-checkpoints). */
  async refreshModels(b: BackendConfig): Promise<ModelInfo[]> {
    return this.catalog.refresh(b);
  }

  /** Closes the attempt's row with how it went; only the last few hundred rows are kept. */
  private record(jobId: string, outcome: AttemptOutcome | "awaiting" | "awaiting_probe", now: number): void {
    this.sql.exec(
      "UPDATE recent SET outcome = ?, run_ms = ? - granted_at WHERE seq = (SELECT MAX(seq) FROM recent WHERE job_id = ? AND outcome IS NULL)",
      outcome,
      now,
      jobId,
    );
    this.sql.exec("DELETE FROM recent WHERE seq <= (SELECT MAX(seq) FROM recent) - ?", RECENT_ATTEMPTS * 3);
  }

  private recentFigures(): BackendStatus["recent"] {
    const rows = this.sql
      .exec<{ outcome: AttemptOutcome; run_ms: number }>("SELECT outcome, run_ms FROM recent WHERE outcome IN ('success', 'failure') ORDER BY seq DESC LIMIT ?", RECENT_ATTEMPTS)
      .toArray();
    const runs = rows.filter((r) => r.outcome === "success").map((r) => r.run_ms).sort((a, b) => a - b);
    return {
      jobs: rows.length,
      success_rate: rows.length ? runs.length / rows.length : null,
      run_ms_p50: runs.length ? (runs[Math.floor((runs.length - 1) / 2)] ?? null) : null,
    };
  }

  override async alarm(): Promise<void> {
    // An alarm may fire a hair early; what falls due within this slack is handled now.
    const now = Date.now() + 250;
    this.reclaimExpired(now);
    await this.grantWaiting(now);
  }

  /** The waiting job whose tenant was served longest ago: one tenant's burst cannot starve another. */
  private nextInLine(): string | undefined {
    return this.sql
      .exec<{ job_id: string }>(
        `SELECT w.job_id FROM waiting w LEFT JOIN tenants t ON t.tenant = w.tenant
         ORDER BY COALESCE(t.last_grant, 0) ASC, w.seq ASC LIMIT 1`,
      )
      .toArray()[0]?.job_id;
  }

  private probing(): boolean {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM slots WHERE probe = 1").one().n > 0;
  }

  private reclaimExpired(now: number): void {
    this.sql.exec("DELETE FROM slots WHERE lease_until < ?", now);
  }

  /**
   * Hands free slots to the line, each as a short claim, and asks each woken job whether it still
   * wants its slot: one that ended or runs elsewhere says no, and its slot goes to the next in
   * line at once. A wake-up that is lost leaves a claim that lapses after CLAIM_MS (the alarm
   * reclaims it), and the job itself re-checks on its own alarm within REQUEUE_CHECK_MS.
   */
  private async grantWaiting(now: number): Promise<void> {
    const max = this.sql.exec<{ max_concurrency: number }>("SELECT max_concurrency FROM limits WHERE id = 1").one().max_concurrency;
    const backend = this.sql.exec<{ backend: string }>("SELECT backend FROM identity WHERE id = 1").toArray()[0]?.backend;
    // Bounded: every round removes at least one job from the line.
    for (;;) {
      const h = this.health();
      const granted: string[] = [];
      const grantNext = (probe: boolean): boolean => {
        const next = this.nextInLine();
        if (!next) return false;
        const row = this.sql.exec<{ tenant: string }>("SELECT tenant FROM waiting WHERE job_id = ?", next).one();
        this.grant(next, row.tenant, CLAIM_MS, now, probe);
        granted.push(next);
        return true;
      };
      if (h.open_until === null) {
        // Bounded by the free slots.
        while (this.count("slots") < max && grantNext(false));
      } else if (now >= h.open_until && !this.probing()) {
        // Half-open: one waiting job probes the backend; its outcome opens or closes the circuit.
        grantNext(true);
      }
      await this.reschedule();
      if (!granted.length || backend === undefined) return;
      const answers = await Promise.all(granted.map(async (jobId) => ({ jobId, wants: await this.ask(jobId, backend) })));
      const unwanted = answers.filter((a) => a.wants === false).map((a) => a.jobId);
      if (!unwanted.length) return;
      for (const jobId of unwanted) this.sql.exec("DELETE FROM slots WHERE job_id = ?", jobId);
      now = Date.now();
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

  /** Tells jobs whose line was dissolved to dispatch again; one that misses it re-checks on its alarm. */
  private async wake(jobIds: string[]): Promise<void> {
    const backend = this.sql.exec<{ backend: string }>("SELECT backend FROM identity WHERE id = 1").toArray()[0]?.backend;
    if (backend === undefined) return;
    await Promise.all(jobIds.map((jobId) => this.ask(jobId, backend)));
  }

  /** One alarm: the earliest lease expiry (to reclaim it) or the end of an open circuit's cool-down. */
  private async reschedule(): Promise<void> {
    const lease = this.sql.exec<{ t: number | null }>("SELECT MIN(lease_until) AS t FROM slots").one().t;
    const h = this.health();
    const waiting = this.count("waiting");
    const times = [lease, waiting && h.open_until !== null ? h.open_until : null].filter((t): t is number => t !== null);
    if (times.length) await this.ctx.storage.setAlarm(Math.min(...times) + 1);
    else await this.ctx.storage.deleteAlarm();
  }
}

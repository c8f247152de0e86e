import { DurableObject } from "cloudflare:workers";
import type { Env } from "../src/env";
import { isOk, jobStub } from "../src/jobs/client";
import type { JobType } from "../src/config";
import type { JobStatus } from "../src/schemas/job";
import type { AdmitResult, ClaimResult, EndpointJob, IndexQuery, IndexRow, RateResult } from "../src/contracts/tenant";
import type { TenantRpc } from "../src/contracts/rpc";

/** A tenant's A1111 calls that one progress, interrupt or skip looks at. */
const MAX_WAITING_LISTED = 100;

/** A tenant at its active-job limit has its oldest active rows checked at most this often... */
const VERIFY_EVERY_MS = 30_000;
/** ...a few at a time, and only rows older than this (younger ones are simply running). */
const VERIFY_BATCH = 10;
const VERIFY_MIN_AGE_MS = 60_000;

/** The index checks its active rows against their jobs this often (a job's end report may be lost)... */
const SWEEP_EVERY_MS = 60_000;
/** ...in batches, each row at most this often, and only once it is this old. */
const SWEEP_BATCH = 50;
const RECHECK_MS = 5 * 60_000;
const SWEEP_MIN_AGE_MS = 60_000;

/** A row whose job is not found is an intake that died half-way only past this age (well past any intake). */
const MISSING_MIN_AGE_MS = 60_000;

/** Statuses only move forward: a late update about an earlier state must not undo a later one. */
const RANK_SQL = (col: string) => `CASE ${col} WHEN 'queued' THEN 0 WHEN 'running' THEN 1 ELSE 2 END`;

/** RunPod's `/health` counts an endpoint's jobs over about this long. */
const ENDPOINT_JOBS_TTL_MS = 24 * 3600_000;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS claims (scope TEXT NOT NULL, key TEXT NOT NULL, hash TEXT NOT NULL, run_id TEXT NOT NULL, expires_at INTEGER, PRIMARY KEY (scope, key));
  CREATE INDEX IF NOT EXISTS claims_by_run ON claims (run_id);
  CREATE TABLE IF NOT EXISTS options (name TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS results (id TEXT PRIMARY KEY, body TEXT NOT NULL, expires_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, status TEXT NOT NULL, type TEXT NOT NULL, track_id TEXT);
  CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (created_at DESC, id DESC);
  CREATE INDEX IF NOT EXISTS jobs_by_track ON jobs (track_id, created_at DESC, id DESC);
  CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS names (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS rate (id INTEGER PRIMARY KEY CHECK (id = 1), window_start INTEGER NOT NULL, count INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at DESC, id DESC);
  CREATE TABLE IF NOT EXISTS waiting (run_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS endpoint_jobs (run_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, created_at INTEGER NOT NULL, status TEXT NOT NULL, retried INTEGER NOT NULL DEFAULT 0);
  CREATE INDEX IF NOT EXISTS endpoint_jobs_by_endpoint ON endpoint_jobs (endpoint, created_at);
`;

/** The size of an SQLite database without a table: its first page alone. */
const EMPTY_DATABASE_BYTES = 4096;

/**
 * One per tenant: what is scoped to a tenant rather than to a job. Idempotency keys, the
 * A1111 options a tenant set, client-chosen task ids (SD-on-EKS) that must be unique, the
 * index of the tenant's jobs (for `GET /v1/jobs` and the count of active jobs), and the jobs its
 * synchronous A1111 calls wait on (what A1111's progress, interrupt and skip act on).
 */
export class TenantObject extends DurableObject<Env> implements TenantRpc {
  /** Whether this instance made sure the tables exist (see `sql`). */
  private schemaReady = false;
  /** Whether this instance knows the sweep's alarm is set and the tenant's name stored: then a submit costs one write. */
  private sweepArmed = false;

  /**
   * The object's SQLite, its tables made at first use rather than in the constructor: a read of a
   * tenant that never wrote (an unknown task id, an empty list) answers from `blank` and stores nothing.
   */
  private get sql(): SqlStorage {
    if (!this.schemaReady) {
      const sql = this.ctx.storage.sql;
      sql.exec(SCHEMA);
      // Added after the first version of the index: when each active row was last checked.
      if (!sql.exec<{ name: string }>("PRAGMA table_info(jobs)").toArray().some((c) => c.name === "checked_at")) {
        sql.exec("ALTER TABLE jobs ADD COLUMN checked_at INTEGER");
      }
      this.schemaReady = true;
    }
    return this.ctx.storage.sql;
  }

  /**
   * True while the object has never written: its database is no larger than SQLite's first page
   * (the schema's root; any table adds a page). Reads then answer empty without touching SQL.
   */
  private get blank(): boolean {
    return !this.schemaReady && this.ctx.storage.sql.databaseSize <= EMPTY_DATABASE_BYTES;
  }

  /**
   * Binds `key` to `runId` unless it is bound already: then the first run id comes back, or a
   * conflict when the request behind it differs (`hash` is of the canonical JSON body).
   */
  async claim(scope: "idempotency" | "eks_task", key: string, hash: string, runId: string, ttlMs: number | null): Promise<ClaimResult> {
    const now = Date.now();
    // Forget expired keys a few at a time, so the table stays the size of a day's traffic.
    this.sql.exec("DELETE FROM claims WHERE rowid IN (SELECT rowid FROM claims WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT 100)", now);
    // An expired key never matches, whether or not the purge above reached it yet.
    const found = this.sql
      .exec<{ hash: string; run_id: string }>("SELECT hash, run_id FROM claims WHERE scope = ? AND key = ? AND (expires_at IS NULL OR expires_at >= ?)", scope, key, now)
      .toArray()[0];
    if (found) return { status: found.hash === hash ? "existing" : "conflict", runId: found.run_id };
    this.sql.exec("INSERT OR REPLACE INTO claims (scope, key, hash, run_id, expires_at) VALUES (?, ?, ?, ?, ?)", scope, key, hash, runId, ttlMs === null ? null : now + ttlMs);
    return { status: "claimed", runId };
  }

  /** Frees a key bound to `runId` whose job was refused before it existed (a limit): it never happened. */
  async release(scope: "idempotency" | "eks_task", key: string, runId: string): Promise<void> {
    if (this.blank) return;
    this.sql.exec("DELETE FROM claims WHERE scope = ? AND key = ? AND run_id = ?", scope, key, runId);
  }

  async lookup(scope: "idempotency" | "eks_task", key: string): Promise<string | null> {
    if (this.blank) return null;
    return (
      this.sql.exec<{ run_id: string }>("SELECT run_id FROM claims WHERE scope = ? AND key = ? AND (expires_at IS NULL OR expires_at >= ?)", scope, key, Date.now()).toArray()[0]?.run_id ??
      null
    );
  }

  /** A synchronous A1111 call waits on `runId` until `ttlMs` at most (the job's own deadline). */
  async addWaiting(runId: string, ttlMs: number): Promise<void> {
    const now = Date.now();
    this.sql.exec("DELETE FROM waiting WHERE expires_at < ?", now);
    this.sql.exec("INSERT OR REPLACE INTO waiting (run_id, created_at, expires_at) VALUES (?, ?, ?)", runId, now, now + ttlMs);
  }

  async removeWaiting(runId: string): Promise<void> {
    if (this.blank) return;
    this.sql.exec("DELETE FROM waiting WHERE run_id = ?", runId);
  }

  /** The run ids waited on, oldest first (at most MAX_WAITING_LISTED: what progress or interrupt acts on at once). */
  async listWaiting(): Promise<string[]> {
    if (this.blank) return [];
    return this.sql
      .exec<{ run_id: string }>("SELECT run_id FROM waiting WHERE expires_at >= ? ORDER BY created_at, run_id LIMIT ?", Date.now(), MAX_WAITING_LISTED)
      .toArray()
      .map((r) => r.run_id);
  }

  async getOptions(): Promise<Record<string, unknown>> {
    if (this.blank) return {};
    const rows = this.sql.exec<{ name: string; value: string }>("SELECT name, value FROM options").toArray();
    return Object.fromEntries(rows.map((r) => [r.name, JSON.parse(r.value) as unknown]));
  }

  async setOptions(values: Record<string, unknown>): Promise<void> {
    for (const [name, value] of Object.entries(values)) {
      this.sql.exec("INSERT OR REPLACE INTO options (name, value) VALUES (?, ?)", name, JSON.stringify(value));
    }
  }

  /** Keeps an answer that was ready at once (RunPod's getModels...) for a later status call, as RunPod keeps /run results. */
  async putResult(id: string, body: string, ttlMs: number): Promise<void> {
    const now = Date.now();
    this.sql.exec("DELETE FROM results WHERE rowid IN (SELECT rowid FROM results WHERE expires_at < ? LIMIT 100)", now);
    this.sql.exec("INSERT OR REPLACE INTO results (id, body, expires_at) VALUES (?, ?, ?)", id, body, now + ttlMs);
  }

  /** Remembers a RunPod job under its endpoint, for that endpoint's `/health` and `/purge-queue`. */
  async trackEndpointJob(endpoint: string, runId: string): Promise<void> {
    const now = Date.now();
    this.sql.exec("DELETE FROM endpoint_jobs WHERE rowid IN (SELECT rowid FROM endpoint_jobs WHERE created_at < ? LIMIT 100)", now - ENDPOINT_JOBS_TTL_MS);
    this.sql.exec("INSERT OR IGNORE INTO endpoint_jobs (run_id, endpoint, created_at, status) VALUES (?, ?, ?, 'queued')", runId, endpoint, now);
  }

  /** The endpoint's jobs of the last day, newest first, with the last status seen (terminal ones are final). */
  async endpointJobs(endpoint: string, limit: number): Promise<EndpointJob[]> {
    if (this.blank) return [];
    return this.sql
      .exec<EndpointJob>("SELECT run_id, status, retried FROM endpoint_jobs WHERE endpoint = ? AND created_at >= ? ORDER BY created_at DESC LIMIT ?", endpoint, Date.now() - ENDPOINT_JOBS_TTL_MS, limit)
      .toArray();
  }

  async noteEndpointJob(runId: string, status: string, retried = false): Promise<void> {
    if (this.blank) return;
    this.sql.exec("UPDATE endpoint_jobs SET status = ?, retried = retried + ? WHERE run_id = ?", status, retried ? 1 : 0, runId);
  }

  async getResult(id: string): Promise<string | null> {
    if (this.blank) return null;
    return this.sql.exec<{ body: string }>("SELECT body FROM results WHERE id = ? AND expires_at >= ?", id, Date.now()).toArray()[0]?.body ?? null;
  }

  // ---- limits ----

  /**
   * Counts one job-submitting request in the current fixed window of `periodMs` and says whether
   * it is within `requests`. Refused requests count too, so hammering does not open a gap.
   */
  async hit(requests: number, periodMs: number): Promise<RateResult> {
    const now = Date.now();
    const start = now - (now % periodMs);
    const row = this.sql.exec<{ window_start: number; count: number }>("SELECT window_start, count FROM rate WHERE id = 1").toArray()[0];
    const count = row?.window_start === start ? row.count + 1 : 1;
    this.sql.exec("INSERT OR REPLACE INTO rate (id, window_start, count) VALUES (1, ?, ?)", start, count);
    return { ok: count <= requests, remaining: Math.max(0, requests - count), reset_ms: start + periodMs - now };
  }

  // ---- the job index ----

  /**
   * Enters a new job in the index, unless the tenant already has `maxActive` jobs queued or
   * running: one call, so two submits racing for the last place cannot both get it.
   */
  async admit(tenant: string, row: IndexRow, maxActive: number | null): Promise<AdmitResult> {
    if (maxActive !== null) {
      const active = this.activeCount();
      if (active >= maxActive) return { ok: false, active, verify: this.rowsToVerify() };
    }
    this.sql.exec("INSERT OR IGNORE INTO jobs (id, created_at, status, type, track_id) VALUES (?, ?, ?, ?, ?)", row.id, row.created_at, row.status, row.type, row.track_id);
    if (!this.sweepArmed) {
      // The sweep asks job objects as this tenant.
      this.sql.exec("INSERT OR IGNORE INTO names (key, value) VALUES ('tenant', ?)", tenant);
      await this.armSweep();
    }
    return { ok: true };
  }

  private async armSweep(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + SWEEP_EVERY_MS);
    this.sweepArmed = true;
  }

  /**
   * The sweep: old active rows are checked against their job objects, the source of truth. A job
   * whose end report was lost is corrected here; a row whose job was never created (an intake that
   * stopped half-way) is removed. Runs while the tenant has active jobs.
   */
  override async alarm(): Promise<void> {
    const tenant = this.sql.exec<{ value: string }>("SELECT value FROM names WHERE key = 'tenant'").toArray()[0]?.value;
    const now = Date.now();
    const rows = tenant
      ? this.sql
          .exec<{ id: string }>(
            `SELECT id FROM jobs WHERE status IN ('queued', 'running') AND created_at < ? AND (checked_at IS NULL OR checked_at < ?)
             ORDER BY COALESCE(checked_at, 0), created_at LIMIT ?`,
            now - SWEEP_MIN_AGE_MS,
            now - RECHECK_MS,
            SWEEP_BATCH,
          )
          .toArray()
      : [];
    await Promise.all(
      rows.map(async ({ id }) => {
        const res = await jobStub(this.env, id)
          .get(tenant ?? "")
          .catch(() => undefined);
        if (!res) return;
        if (!isOk(res)) await this.dropMissing(id);
        else this.sql.exec(`UPDATE jobs SET status = CASE WHEN ${RANK_SQL("?")} = 2 THEN ? ELSE status END, checked_at = ? WHERE id = ?`, res.snapshot.job.status, res.snapshot.job.status, now, id);
      }),
    );
    if (this.activeCount() > 0) await this.ctx.storage.setAlarm(Date.now() + SWEEP_EVERY_MS);
    else this.sweepArmed = false;
  }

  /** A job that was admitted but never created (its intake failed) leaves the index. */
  async forget(id: string): Promise<void> {
    if (this.blank) return;
    this.sql.exec("DELETE FROM jobs WHERE id = ?", id);
  }

  /**
   * The job reached the end of RETENTION_S: its index row, the claims bound to it (idempotency
   * key, SD-on-EKS task id) and its endpoint row go with it, so a key or task id can be used anew.
   */
  async purgeJob(id: string): Promise<void> {
    if (this.blank) return;
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("DELETE FROM jobs WHERE id = ?", id);
      this.sql.exec("DELETE FROM claims WHERE run_id = ?", id);
      this.sql.exec("DELETE FROM endpoint_jobs WHERE run_id = ?", id);
      this.sql.exec("DELETE FROM waiting WHERE run_id = ?", id);
    });
  }

  /**
   * A row whose job object answered not_found (a list page's correction, the sweep): removed only
   * once older than MISSING_MIN_AGE_MS. Intake enters the row before it creates the job, so a younger
   * one is a submit under way, whose place under `max_active_jobs` must hold.
   */
  async dropMissing(id: string): Promise<void> {
    if (this.blank) return;
    this.sql.exec("DELETE FROM jobs WHERE id = ? AND created_at < ?", id, Date.now() - MISSING_MIN_AGE_MS);
  }

  /** The job object reports its status; the row is created if it was missing (a job from before the index). */
  async setStatus(row: IndexRow): Promise<void> {
    this.sql.exec(
      `INSERT INTO jobs (id, created_at, status, type, track_id) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status WHERE ${RANK_SQL("jobs.status")} < ${RANK_SQL("excluded.status")}`,
      row.id,
      row.created_at,
      row.status,
      row.type,
      row.track_id,
    );
  }

  /** RunPod's `/retry`: a failed job is queued again, the one way back that `setStatus` does not take. */
  async reopen(id: string): Promise<void> {
    this.sql.exec("UPDATE jobs SET status = 'queued' WHERE id = ? AND status = 'failed'", id);
    // Active again: the sweep must watch it.
    await this.armSweep();
  }

  /** Newest first, by (created_at, id): a keyset that new jobs (always newer) never shift. */
  async list(q: IndexQuery): Promise<IndexRow[]> {
    if (this.blank) return [];
    const where: string[] = [];
    const args: (string | number)[] = [];
    const add = (clause: string, ...values: (string | number)[]) => {
      where.push(clause);
      args.push(...values);
    };
    // Queued and running are one state here (active); the job objects tell them apart.
    if (q.status === "queued" || q.status === "running") add("status IN ('queued', 'running')");
    else if (q.status) add("status = ?", q.status);
    if (q.type) add("type = ?", q.type);
    if (q.track_id !== undefined) add("track_id = ?", q.track_id);
    if (q.created_after !== undefined) add("created_at >= ?", q.created_after);
    if (q.created_before !== undefined) add("created_at < ?", q.created_before);
    if (q.before) add("(created_at < ? OR (created_at = ? AND id < ?))", q.before.created_at, q.before.created_at, q.before.id);
    const sql = `SELECT id, created_at, status, type, track_id FROM jobs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id DESC LIMIT ?`;
    return this.sql.exec<{ id: string; created_at: number; status: JobStatus; type: JobType; track_id: string | null }>(sql, ...args, q.limit).toArray();
  }

  private rowsToVerify(): IndexRow[] {
    const now = Date.now();
    const last = this.sql.exec<{ value: number }>("SELECT value FROM meta WHERE name = 'verified_at'").toArray()[0]?.value ?? 0;
    if (now - last < VERIFY_EVERY_MS) return [];
    this.sql.exec("INSERT OR REPLACE INTO meta (name, value) VALUES ('verified_at', ?)", now);
    return this.sql
      .exec<{ id: string; created_at: number; status: JobStatus; type: JobType; track_id: string | null }>(
        "SELECT id, created_at, status, type, track_id FROM jobs WHERE status IN ('queued', 'running') AND created_at < ? ORDER BY created_at ASC LIMIT ?",
        now - VERIFY_MIN_AGE_MS,
        VERIFY_BATCH,
      )
      .toArray();
  }

  private activeCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running')").one().n;
  }
}

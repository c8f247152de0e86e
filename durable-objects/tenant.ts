import { DurableObject } from "cloudflare:workers";
import type { Env } from "../src/env";
import { isOk, jobStub } from "../src/jobs/client";
import type { AdmitResult, ClaimRef, ClaimResult, ClaimScope, EndpointCount, EndpointJob, IndexQuery, IndexRow, RateResult, WaitingRun } from "../src/contracts/tenant";
import type { TenantRpc } from "../src/contracts/rpc";
import { alarmBy } from "./alarms";
import { JobIndexTable, SWEEP_BATCH } from "./tenant-index";

/** The index checks its active rows against their jobs this often (a job's end report may be lost)... */
const SWEEP_EVERY_MS = 60_000;
/** ...and this soon after a full batch, while more rows are due: SWEEP_BATCH rows per this many ms at most. */
const SWEEP_BUSY_MS = 12_000;

/** Expired files deleted by one alarm at most (one R2 call); more wait for the next, at once. */
const FILES_PER_ALARM = 100;
/** Files whose deletion failed are tried again this much later. */
const FAILED_DELETE_RETRY_MS = 60_000;

/** RunPod's `/health` counts an endpoint's jobs over about this long. */
const ENDPOINT_JOBS_TTL_MS = 24 * 3600_000;
const TERMINAL_STATUSES: ReadonlySet<string> = new Set(["succeeded", "failed", "canceled"]);

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
  CREATE TABLE IF NOT EXISTS expiring_files (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS claim_refs (run_id TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, expires_at INTEGER, PRIMARY KEY (run_id, scope, key));
`;

/**
 * A tenant's object, by its name (src/tenant-shards.ts) either the tenant's home or one of its
 * shards; the class is one, each object holds the rows routed to it. The home keeps what is a
 * setting of the tenant (A1111 options, RunPod answers kept for a status call, the rate window)
 * and, for a tenant with `max_active_jobs`, its whole job index (one count); a shard keeps the
 * index rows, A1111 waits and RunPod endpoint rows of the runs hashed to it, and the idempotency
 * keys and task ids hashed to it.
 */
export class TenantObject extends DurableObject<Env> implements TenantRpc {
  /** Whether this instance made sure the tables exist (see `sql`). */
  private schemaReady = false;
  /** Whether this instance knows the sweep's alarm is set and the tenant's name stored: then a submit costs one write. */
  private sweepArmed = false;
  private readonly index = new JobIndexTable(() => this.sql);

  /**
   * The object's SQLite, its tables made at first use rather than in the constructor: a read of an
   * object that never wrote (an unknown task id, an empty list) answers from `blank` and stores nothing.
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
   * True while the object has never written: none of its tables exists. Reads then answer empty
   * and make none. (Not the database's size: the runtime may keep rows of its own there, as
   * `wrangler dev` keeps the object's name.)
   */
  private get blank(): boolean {
    return !this.schemaReady && !this.ctx.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'claims'").toArray().length;
  }

  // ---- claims: idempotency keys and task ids ----

  /**
   * Binds `key` to `runId` unless it is bound already: then the first run id comes back, or a
   * conflict when the request behind it differs (`hash` is of the canonical JSON body).
   */
  async claim(scope: ClaimScope, key: string, hash: string, runId: string, ttlMs: number | null): Promise<ClaimResult> {
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

  /** Frees a key bound to `runId`: its job was refused before it existed (a limit), or was deleted. */
  async release(scope: ClaimScope, key: string, runId: string): Promise<void> {
    if (this.blank) return;
    this.sql.exec("DELETE FROM claims WHERE scope = ? AND key = ? AND run_id = ?", scope, key, runId);
  }

  /** Who holds `key`: the run it is bound to and the hash it was claimed with. */
  async holder(scope: ClaimScope, key: string): Promise<{ runId: string; hash: string } | null> {
    if (this.blank) return null;
    const row = this.sql
      .exec<{ hash: string; run_id: string }>("SELECT hash, run_id FROM claims WHERE scope = ? AND key = ? AND (expires_at IS NULL OR expires_at >= ?)", scope, key, Date.now())
      .toArray()[0];
    return row ? { runId: row.run_id, hash: row.hash } : null;
  }

  async lookup(scope: ClaimScope, key: string): Promise<string | null> {
    if (this.blank) return null;
    return (
      this.sql.exec<{ run_id: string }>("SELECT run_id FROM claims WHERE scope = ? AND key = ? AND (expires_at IS NULL OR expires_at >= ?)", scope, key, Date.now()).toArray()[0]?.run_id ??
      null
    );
  }

  /** In the run's shard: `runId` may hold `ref` (claimed in the key's shard), for its purge to free. */
  async noteClaim(runId: string, ref: ClaimRef, ttlMs: number | null): Promise<void> {
    const now = Date.now();
    this.sql.exec("DELETE FROM claim_refs WHERE rowid IN (SELECT rowid FROM claim_refs WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT 100)", now);
    this.sql.exec("INSERT OR REPLACE INTO claim_refs (run_id, scope, key, expires_at) VALUES (?, ?, ?, ?)", runId, ref.scope, ref.key, ttlMs === null ? null : now + ttlMs);
  }

  /** The key went to another run: `runId` holds nothing there. */
  async unnoteClaim(runId: string, ref: ClaimRef): Promise<void> {
    if (this.blank) return;
    this.sql.exec("DELETE FROM claim_refs WHERE run_id = ? AND scope = ? AND key = ?", runId, ref.scope, ref.key);
  }

  async claimRefs(runId: string): Promise<ClaimRef[]> {
    if (this.blank) return [];
    return this.sql.exec<ClaimRef>("SELECT scope, key FROM claim_refs WHERE run_id = ?", runId).toArray();
  }

  // ---- what dialects keep per run: A1111 waits, RunPod endpoint rows ----

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

  /** The runs waited on, oldest first, at most `limit`. */
  async listWaiting(limit: number): Promise<WaitingRun[]> {
    if (this.blank) return [];
    return this.sql.exec<WaitingRun>("SELECT run_id, created_at FROM waiting WHERE expires_at >= ? ORDER BY created_at, run_id LIMIT ?", Date.now(), limit).toArray();
  }

  /** Remembers a RunPod job under its endpoint, for that endpoint's `/health` and `/purge-queue`. */
  async trackEndpointJob(endpoint: string, runId: string): Promise<void> {
    const now = Date.now();
    this.sql.exec("DELETE FROM endpoint_jobs WHERE rowid IN (SELECT rowid FROM endpoint_jobs WHERE created_at < ? LIMIT 100)", now - ENDPOINT_JOBS_TTL_MS);
    this.sql.exec("INSERT OR IGNORE INTO endpoint_jobs (run_id, endpoint, created_at, status) VALUES (?, ?, ?, 'queued')", runId, endpoint, now);
  }

  /** The endpoint's jobs of the last day counted by the last status seen (terminal ones are final), and their retries. */
  async endpointCounts(endpoint: string): Promise<EndpointCount[]> {
    if (this.blank) return [];
    return this.sql
      .exec<EndpointCount>("SELECT status, COUNT(*) AS n, SUM(retried) AS retried FROM endpoint_jobs WHERE endpoint = ? AND created_at >= ? GROUP BY status", endpoint, Date.now() - ENDPOINT_JOBS_TTL_MS)
      .toArray();
  }

  /** The endpoint's jobs of the last day not seen to end, oldest first, after `after` (a page's last), at most `limit`. */
  async endpointLiveJobs(endpoint: string, after: { created_at: number; run_id: string } | null, limit: number): Promise<EndpointJob[]> {
    if (this.blank) return [];
    return this.sql
      .exec<EndpointJob>(
        `SELECT run_id, status, retried, created_at FROM endpoint_jobs WHERE endpoint = ? AND created_at >= ? AND status IN ('queued', 'running')
         AND (created_at > ? OR (created_at = ? AND run_id > ?)) ORDER BY created_at, run_id LIMIT ?`,
        endpoint,
        Date.now() - ENDPOINT_JOBS_TTL_MS,
        after?.created_at ?? -1,
        after?.created_at ?? -1,
        after?.run_id ?? "",
        limit,
      )
      .toArray();
  }

  async noteEndpointJob(runId: string, status: string, retried = false): Promise<void> {
    if (this.blank) return;
    this.sql.exec("UPDATE endpoint_jobs SET status = ?, retried = retried + ? WHERE run_id = ?", status, retried ? 1 : 0, runId);
  }

  // ---- the tenant's settings (home) ----

  async getOptions(): Promise<Record<string, unknown>> {
    return this.options();
  }

  private options(): Record<string, unknown> {
    if (this.blank) return {};
    const rows = this.sql.exec<{ name: string; value: string }>("SELECT name, value FROM options").toArray();
    return Object.fromEntries(rows.map((r) => [r.name, JSON.parse(r.value) as unknown]));
  }

  /**
   * Sets options unless all of them together would pass `maxBytes` (then nothing changes: false).
   * The sum and the writes are one synchronous step: requests at the same time cannot each pass it.
   */
  async setOptions(values: Record<string, unknown>, maxBytes: number): Promise<boolean> {
    const merged = { ...this.options(), ...values };
    if (JSON.stringify(merged).length > maxBytes) return false;
    for (const [name, value] of Object.entries(values)) {
      this.sql.exec("INSERT OR REPLACE INTO options (name, value) VALUES (?, ?)", name, JSON.stringify(value));
    }
    return true;
  }

  /** Keeps an answer that was ready at once (RunPod's getModels...) for a later status call, as RunPod keeps /run results. */
  async putResult(id: string, body: string, ttlMs: number): Promise<void> {
    const expiresAt = Date.now() + ttlMs;
    this.sql.exec("INSERT OR REPLACE INTO results (id, body, expires_at) VALUES (?, ?, ?)", id, body, expiresAt);
    // Deleted when it expires, by the alarm, whether or not anything comes after it.
    await alarmBy(this.ctx.storage, expiresAt);
  }

  /** An R2 object of the tenant's that lives until `expiresAt` (a Replicate file upload): the alarm deletes it then. */
  async expireFileAt(key: string, expiresAt: number): Promise<void> {
    this.sql.exec("INSERT OR REPLACE INTO expiring_files (key, expires_at) VALUES (?, ?)", key, expiresAt);
    await alarmBy(this.ctx.storage, expiresAt);
  }

  async getResult(id: string): Promise<string | null> {
    if (this.blank) return null;
    return this.sql.exec<{ body: string }>("SELECT body FROM results WHERE id = ? AND expires_at >= ?", id, Date.now()).toArray()[0]?.body ?? null;
  }

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
   * Enters new jobs in the index, unless they would take the tenant past `maxActive` jobs queued
   * or running: one call, so two submits racing for the last place cannot both get it, and the
   * jobs of one request (several rows) get their places together or none.
   */
  async admit(tenant: string, rows: IndexRow | IndexRow[], maxActive: number | null): Promise<AdmitResult> {
    // A row already here was admitted: the same job entered again (an Idempotency-Key's repeat racing
    // its first request) takes no second place (without a limit, inserting it again changes nothing).
    const all = [rows].flat().filter((row) => maxActive === null || !this.index.has(row.id));
    if (maxActive !== null) {
      const active = this.index.activeCount();
      if (active + all.length > maxActive) return { ok: false, active, verify: this.index.rowsToVerify() };
    }
    for (const row of all) this.index.insert(row);
    if (!this.sweepArmed) {
      // The sweep asks job objects as this tenant.
      this.sql.exec("INSERT OR IGNORE INTO names (key, value) VALUES ('tenant', ?)", tenant);
      await this.armSweep();
    }
    return { ok: true };
  }

  private async armSweep(): Promise<void> {
    await alarmBy(this.ctx.storage, Date.now() + SWEEP_EVERY_MS);
    this.sweepArmed = true;
  }


  /**
   * The sweep: old active rows are checked against their job objects, the source of truth. A job
   * whose end report was lost is corrected here; a row whose job was never created (an intake that
   * stopped half-way) is removed. Runs while the object has active rows.
   */
  override async alarm(): Promise<void> {
    const tenant = this.sql.exec<{ value: string }>("SELECT value FROM names WHERE key = 'tenant'").toArray()[0]?.value;
    const now = Date.now();
    const ids = tenant ? this.index.rowsToSweep(now) : [];
    await Promise.all(
      ids.map(async (id) => {
        const res = await jobStub(this.env, id)
          .get(tenant ?? "")
          .catch(() => undefined);
        if (!res) return;
        if (!isOk(res)) this.index.dropMissing(id);
        else this.index.checked(id, res.snapshot.job.status, now);
      }),
    );
    const nextExpiry = await this.expire();
    const active = this.index.activeCount() > 0;
    const nextSweep = active ? Date.now() + (ids.length >= SWEEP_BATCH ? SWEEP_BUSY_MS : SWEEP_EVERY_MS) : Infinity;
    const next = Math.min(nextSweep, nextExpiry ?? Infinity);
    if (next !== Infinity) await this.ctx.storage.setAlarm(next);
    this.sweepArmed = active;
  }

  /** Deletes the kept answers and files that expired (files a batch at a time); answers when the next one does. */
  private async expire(): Promise<number | null> {
    const now = Date.now();
    this.sql.exec("DELETE FROM results WHERE expires_at <= ?", now);
    const files = this.sql.exec<{ key: string }>("SELECT key FROM expiring_files WHERE expires_at <= ? ORDER BY expires_at LIMIT ?", now, FILES_PER_ALARM).toArray().map((f) => f.key);
    // R2 first: a failure leaves the rows for a later alarm, and never keeps this one from re-arming.
    let failed = false;
    if (files.length) {
      try {
        await this.env.IMAGES.delete(files);
        for (const key of files) this.sql.exec("DELETE FROM expiring_files WHERE key = ?", key);
      } catch (err) {
        failed = true;
        console.error("expired files not deleted; tried again later", err instanceof Error ? err.message : String(err));
      }
    }
    const next = this.sql.exec<{ at: number | null }>("SELECT MIN(at) AS at FROM (SELECT MIN(expires_at) AS at FROM results UNION ALL SELECT MIN(expires_at) FROM expiring_files)").one().at;
    if (next === null) return null;
    if (failed) return Math.max(next, now + FAILED_DELETE_RETRY_MS);
    // A full batch: the rest at once.
    return files.length === FILES_PER_ALARM ? now : next;
  }

  /** A job that was admitted but never created (its intake failed) leaves the index. */
  async forget(id: string): Promise<void> {
    if (this.blank) return;
    this.index.delete(id);
  }

  /**
   * The job reached the end of RETENTION_S: its rows here go with it (index row, endpoint row, wait,
   * the notes of its claims, and claims bound to it here), so a key or task id can be used anew.
   */
  async purgeJob(id: string): Promise<void> {
    if (this.blank) return;
    this.ctx.storage.transactionSync(() => {
      this.index.delete(id);
      this.sql.exec("DELETE FROM claims WHERE run_id = ?", id);
      this.sql.exec("DELETE FROM claim_refs WHERE run_id = ?", id);
      this.sql.exec("DELETE FROM endpoint_jobs WHERE run_id = ?", id);
      this.sql.exec("DELETE FROM waiting WHERE run_id = ?", id);
    });
  }

  /** A row whose job object answered not_found (a list page's correction, a refused admit's check). */
  async dropMissing(id: string): Promise<void> {
    if (this.blank) return;
    this.index.dropMissing(id);
  }

  /** The job object reports its status; the row is created if it was missing. */
  async setStatus(row: IndexRow): Promise<void> {
    this.index.setStatus(row);
    // A RunPod job's end, where this shard also tracks it for its endpoint's /health and /purge-queue.
    if (TERMINAL_STATUSES.has(row.status)) this.sql.exec("UPDATE endpoint_jobs SET status = ? WHERE run_id = ? AND status IN ('queued', 'running')", row.status, row.id);
  }

  /** A failed job queued again (RunPod's `/retry`), held to `maxActive` as a new job is by `admit`. */
  async reopen(id: string, maxActive: number | null): Promise<AdmitResult> {
    if (maxActive !== null) {
      const active = this.index.activeCount();
      if (active >= maxActive) return { ok: false, active, verify: this.index.rowsToVerify() };
    }
    this.index.reopen(id);
    // Active again: the sweep must watch it.
    await this.armSweep();
    return { ok: true };
  }

  async list(q: IndexQuery): Promise<IndexRow[]> {
    if (this.blank) return [];
    return this.index.list(q);
  }
}

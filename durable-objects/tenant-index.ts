/**
 * The job index table of one tenant object (its home or one of its shards): the rows `GET /v1/jobs`
 * filters and orders, and the count `max_active_jobs` holds a home object's tenant to.
 */
import type { JobType } from "../src/config";
import type { IndexQuery, IndexRow } from "../src/contracts/tenant";
import type { JobStatus } from "../src/schemas/job";

/** A tenant at its active-job limit has its oldest active rows checked at most this often... */
const VERIFY_EVERY_MS = 30_000;
/** ...a few at a time, and only rows older than this (younger ones are simply running). */
const VERIFY_BATCH = 10;
const VERIFY_MIN_AGE_MS = 60_000;

/**
 * The sweep checks a batch of active rows, each at most this often, and only once it is this old.
 * Small batches, more often while rows are due (see TenantObject's alarm): each check wakes a job
 * object, which then stays in memory a while, so a tenant with thousands queued is checked a few
 * at a time, not hundreds at once.
 */
export const SWEEP_BATCH = 10;
const RECHECK_MS = 5 * 60_000;
const SWEEP_MIN_AGE_MS = 60_000;

/** A row whose job is not found is an intake that died half-way only past this age (well past any intake). */
const MISSING_MIN_AGE_MS = 60_000;

/** Statuses only move forward: a late update about an earlier state must not undo a later one. */
const RANK_SQL = (col: string) => `CASE ${col} WHEN 'queued' THEN 0 WHEN 'running' THEN 1 ELSE 2 END`;

const COLUMNS = "id, created_at, status, type, track_id";
type Row = { id: string; created_at: number; status: JobStatus; type: JobType; track_id: string | null };

export class JobIndexTable {
  /** `sql` makes the tables at first use (see TenantObject), so the index only asks for it when it writes or has rows. */
  constructor(private readonly sql: () => SqlStorage) {}

  insert(row: IndexRow): void {
    this.sql().exec(`INSERT OR IGNORE INTO jobs (${COLUMNS}) VALUES (?, ?, ?, ?, ?)`, row.id, row.created_at, row.status, row.type, row.track_id);
  }

  has(id: string): boolean {
    return this.sql().exec("SELECT 1 FROM jobs WHERE id = ?", id).toArray().length > 0;
  }

  activeCount(): number {
    return this.sql().exec<{ n: number }>("SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running')").one().n;
  }

  /** Old active rows for a refused submit to check against their jobs, at most every VERIFY_EVERY_MS. */
  rowsToVerify(): IndexRow[] {
    const sql = this.sql();
    const now = Date.now();
    const last = sql.exec<{ value: number }>("SELECT value FROM meta WHERE name = 'verified_at'").toArray()[0]?.value ?? 0;
    if (now - last < VERIFY_EVERY_MS) return [];
    sql.exec("INSERT OR REPLACE INTO meta (name, value) VALUES ('verified_at', ?)", now);
    return sql
      .exec<Row>(`SELECT ${COLUMNS} FROM jobs WHERE status IN ('queued', 'running') AND created_at < ? ORDER BY created_at ASC LIMIT ?`, now - VERIFY_MIN_AGE_MS, VERIFY_BATCH)
      .toArray();
  }

  /** The active rows the sweep checks next: old enough, least recently checked first. */
  rowsToSweep(now: number): string[] {
    return this.sql()
      .exec<{ id: string }>(
        `SELECT id FROM jobs WHERE status IN ('queued', 'running') AND created_at < ? AND (checked_at IS NULL OR checked_at < ?)
         ORDER BY COALESCE(checked_at, 0), created_at LIMIT ?`,
        now - SWEEP_MIN_AGE_MS,
        now - RECHECK_MS,
        SWEEP_BATCH,
      )
      .toArray()
      .map((r) => r.id);
  }

  /** The sweep saw the job at `status`: only an end is recorded (queued and running are one state here). */
  checked(id: string, status: JobStatus, now: number): void {
    this.sql().exec(`UPDATE jobs SET status = CASE WHEN ${RANK_SQL("?")} = 2 THEN ? ELSE status END, checked_at = ? WHERE id = ?`, status, status, now, id);
  }

  delete(id: string): void {
    this.sql().exec("DELETE FROM jobs WHERE id = ?", id);
  }

  /**
   * A row whose job object answered not_found: removed only once older than MISSING_MIN_AGE_MS.
   * Intake enters the row before it creates the job, so a younger one is a submit under way.
   */
  dropMissing(id: string): void {
    this.sql().exec("DELETE FROM jobs WHERE id = ? AND created_at < ?", id, Date.now() - MISSING_MIN_AGE_MS);
  }

  /** The row is created if it was missing (its entry failed, or a job from before the index). */
  setStatus(row: IndexRow): void {
    this.sql().exec(
      `INSERT INTO jobs (${COLUMNS}) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status WHERE ${RANK_SQL("jobs.status")} < ${RANK_SQL("excluded.status")}`,
      row.id,
      row.created_at,
      row.status,
      row.type,
      row.track_id,
    );
  }

  /** RunPod's `/retry`: a failed job is queued again, the one way back that `setStatus` does not take. */
  reopen(id: string): void {
    this.sql().exec("UPDATE jobs SET status = 'queued' WHERE id = ? AND status = 'failed'", id);
  }

  /** Newest first, by (created_at, id): a keyset that new jobs (always newer) never shift. */
  list(q: IndexQuery): IndexRow[] {
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
    const sql = `SELECT ${COLUMNS} FROM jobs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, id DESC LIMIT ?`;
    return this.sql().exec<Row>(sql, ...args, q.limit).toArray();
  }
}

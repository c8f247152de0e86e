/**
 * A backend's slots whose lease lapsed: what goes back on its own (a claim its job never took, an
 * orphaned generation past its time) and what is asked about first (a job's own lease, an orphaned
 * generation before its time).
 */
import type { Env } from "../src/env";
import { jobStub } from "../src/jobs/client";
import { SLOT_LEASE_MS } from "../src/contracts/scheduler";
import { untilAborted, withDeadline } from "../src/lib/deadline";
import type { BackendLine } from "./backend-line";

/** A lapsed lease whose job could not be asked is asked about again this soon (and the question is bounded by it). */
const LEASE_RECHECK_MS = 10_000;
/** A generation a job left running (see orphan) is asked about this often until the backend's timeout. */
export const ORPHAN_RECHECK_MS = 15_000;

/** An orphaned generation's slot is named for its job and attempt: `<job id>#<n>`. */
const orphanOf = (slotId: string): { jobId: string; n: number } | undefined => {
  const at = slotId.lastIndexOf("#");
  return at < 0 ? undefined : { jobId: slotId.slice(0, at), n: Number(slotId.slice(at + 1)) };
};

export class BackendLeases {
  constructor(
    private readonly sql: SqlStorage,
    private readonly line: BackendLine,
    private readonly env: Env,
  ) {
    // The time up to which each orphaned generation may run (its slot's lease is the next question).
    sql.exec("CREATE TABLE IF NOT EXISTS orphans (slot_id TEXT PRIMARY KEY, until INTEGER NOT NULL)");
  }

  /**
   * Keeps the slot of a generation attempt `n` of the job left running, under the attempt's name,
   * until `until` (the backend's timeout after the call began) or until the job says the backend no
   * longer runs it, asked every ORPHAN_RECHECK_MS: a backend that could not be asked when the job
   * left its call (unreachable, or its stop not yet landed) is asked again once it can answer.
   * Answers when the slot's lease lapses, for the scheduler's alarm.
   */
  orphan(jobId: string, n: number, tenant: string, until: number, now: number): number {
    const slotId = `${jobId}#${n}`;
    const lease = Math.min(until, now + ORPHAN_RECHECK_MS);
    this.sql.exec("INSERT OR REPLACE INTO slots (job_id, tenant, lease_until, probe) VALUES (?, ?, ?, 0)", slotId, tenant, lease);
    this.sql.exec("INSERT OR REPLACE INTO orphans (slot_id, until) VALUES (?, ?)", slotId, until);
    return lease;
  }

  /**
   * Claims that lapsed (their job never took them) go back, each job back in line behind its
   * tenant's others, and so do orphaned generations past their time (one without an `orphans` row
   * is from before that table: its lease was its time). A job's own lease that lapsed, or an
   * orphan's before its time, is not taken back here: see checkLapsed.
   */
  reclaimExpired(now: number): void {
    const gone = this.sql
      .exec<{ job_id: string }>(
        "DELETE FROM slots WHERE lease_until < ?1 AND (job_id IN (SELECT job_id FROM claims) OR (job_id LIKE '%#%' AND COALESCE((SELECT until FROM orphans WHERE slot_id = slots.job_id), 0) < ?1)) RETURNING job_id",
        now,
      )
      .toArray();
    const lapsed = gone.flatMap((s) => {
      this.sql.exec("DELETE FROM orphans WHERE slot_id = ?", s.job_id);
      return this.sql.exec<{ job_id: string; tenant: string; lease_ms: number }>("DELETE FROM claims WHERE job_id = ? RETURNING job_id, tenant, lease_ms", s.job_id).toArray();
    });
    for (const c of lapsed) this.line.join(c.job_id, c.tenant, c.lease_ms);
  }

  /** The slots whose lease lapsed by `now` and that did not go back on their own (run reclaimExpired first). */
  lapsed(now: number): string[] {
    return this.sql.exec<{ job_id: string }>("SELECT job_id FROM slots WHERE lease_until < ?", now).toArray().map((l) => l.job_id);
  }

  /**
   * A job's lease that lapsed is asked about before it goes: its renewals stop while the whole
   * gateway is down, not only when the job is gone, and a generation cut by a restart may still
   * run on the GPU. The slot stays taken while the job says its attempt holds it here (its lost
   * call is checked from its side), and while it cannot be asked; it goes back once the job says no.
   * An orphaned generation's slot is asked about the same way, never past its time.
   */
  async checkLapsed(lapsed: string[], now: number, backend: string | undefined): Promise<void> {
    const answers = await Promise.all(lapsed.map(async (slotId) => ({ slotId, holds: backend === undefined ? false : await this.holds(slotId, backend) })));
    for (const { slotId, holds } of answers) {
      if (holds === false) {
        // Renewed while the question was out: the job holds it, whatever it answered before.
        this.sql.exec("DELETE FROM slots WHERE job_id = ? AND lease_until < ?", slotId, now);
        if (!this.sql.exec("SELECT 1 FROM slots WHERE job_id = ?", slotId).toArray().length) this.sql.exec("DELETE FROM orphans WHERE slot_id = ?", slotId);
      } else if (orphanOf(slotId)) {
        this.sql.exec("UPDATE slots SET lease_until = MIN(?2, (SELECT until FROM orphans WHERE slot_id = ?1)) WHERE job_id = ?1 AND lease_until < ?3", slotId, Date.now() + ORPHAN_RECHECK_MS, now);
      } else {
        this.sql.exec("UPDATE slots SET lease_until = ? WHERE job_id = ? AND lease_until < ?", Date.now() + (holds ? SLOT_LEASE_MS : LEASE_RECHECK_MS), slotId, now);
      }
    }
  }

  /**
   * Whether the job's attempt holds its slot here (for an orphaned generation's slot, whether that
   * attempt's generation may still run); `undefined` when it could not be asked in time. The job
   * may ask its backend before it answers: the wait is cut here, whatever the job does.
   */
  private async holds(slotId: string, backend: string): Promise<boolean | undefined> {
    const orphan = orphanOf(slotId);
    try {
      return await withDeadline(LEASE_RECHECK_MS, (signal) =>
        untilAborted(orphan ? jobStub(this.env, orphan.jobId).attemptRuns(backend, orphan.n) : jobStub(this.env, slotId).holdsSlot(backend), signal),
      );
    } catch {
      return undefined;
    }
  }
}

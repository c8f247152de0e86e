import type { AttemptOutcome, BackendStatus } from "../src/contracts/scheduler";

/** How many recent attempts the backend's figures are taken over. */
export const RECENT_ATTEMPTS = 100;

/** An attempt whose slot went back before its verdict (release "later"): probe or not. */
type Awaiting = "awaiting" | "awaiting_probe";

/** A backend's recent attempts: each grant, how it went and how long it ran, for its figures. */
export class RecentAttempts {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS recent (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, granted_at INTEGER NOT NULL, outcome TEXT, run_ms INTEGER)");
  }

  granted(jobId: string, now: number): void {
    this.sql.exec("INSERT INTO recent (job_id, granted_at) VALUES (?, ?)", jobId, now);
  }

  /** Closes the attempt's row with how it went; only the last few hundred rows are kept. */
  record(jobId: string, outcome: AttemptOutcome | Awaiting, now: number): void {
    this.sql.exec(
      "UPDATE recent SET outcome = ?, run_ms = ? - granted_at WHERE seq = (SELECT MAX(seq) FROM recent WHERE job_id = ? AND outcome IS NULL)",
      outcome,
      now,
      jobId,
    );
    this.sql.exec("DELETE FROM recent WHERE seq <= (SELECT MAX(seq) FROM recent) - ?", RECENT_ATTEMPTS * 3);
  }

  /** The verdict on an attempt recorded as awaiting one; what it awaited (undefined: none awaits). */
  settle(jobId: string, outcome: AttemptOutcome): Awaiting | undefined {
    const row = this.sql
      .exec<{ seq: number; outcome: Awaiting }>("SELECT seq, outcome FROM recent WHERE job_id = ? AND outcome IN ('awaiting', 'awaiting_probe') ORDER BY seq DESC LIMIT 1", jobId)
      .toArray()[0];
    if (!row) return undefined;
    this.sql.exec("UPDATE recent SET outcome = ? WHERE seq = ?", outcome, row.seq);
    return row.outcome;
  }

  figures(): BackendStatus["recent"] {
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
}

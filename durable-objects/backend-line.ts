/**
 * A backend's line of waiting jobs: first in, first out per tenant, round-robin between tenants
 * (the tenant served longest ago goes first). Every operation is an index lookup, so joining,
 * leaving, choosing the next job and counting cost the same with 5,000 jobs waiting as with 5.
 */
export type InLine = { job_id: string; tenant: string; seq: number; lease_ms: number };

export class BackendLine {
  /** The line's length as last read or written here (only this class writes it): an empty line costs no statement. */
  private length: number | undefined;

  constructor(private readonly sql: SqlStorage) {
    // `line_tenants.head_seq` is the tenant's oldest waiting job (null: none waits), so the next
    // job is the first row of the `line_turns` index; `line_count` keeps the line's length and the
    // number of the last grant (`turn`: a counter, so two grants in one millisecond still take turns).
    sql.exec(`
      CREATE TABLE IF NOT EXISTS waiting (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL, lease_ms INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS waiting_by_tenant ON waiting (tenant, seq);
      CREATE TABLE IF NOT EXISTS line_tenants (tenant TEXT PRIMARY KEY, last_grant INTEGER NOT NULL, head_seq INTEGER);
      CREATE INDEX IF NOT EXISTS line_turns ON line_tenants (last_grant, head_seq) WHERE head_seq IS NOT NULL;
      CREATE TABLE IF NOT EXISTS line_count (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL, turn INTEGER NOT NULL);
    `);
    if (!sql.exec("SELECT n FROM line_count").toArray().length) this.adopt();
  }

  /**
   * Once, on the first start of this layout: a scheduler written before it kept each tenant's last
   * grant in `tenants` and counted its line by scanning; both are derived here from its rows.
   */
  private adopt(): void {
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS tenants (tenant TEXT PRIMARY KEY, last_grant INTEGER NOT NULL);
      INSERT OR IGNORE INTO line_tenants (tenant, last_grant, head_seq) SELECT tenant, last_grant, NULL FROM tenants;
      DROP TABLE tenants;
      INSERT OR IGNORE INTO line_tenants (tenant, last_grant, head_seq) SELECT DISTINCT tenant, 0, NULL FROM waiting;
      UPDATE line_tenants SET head_seq = (SELECT MIN(seq) FROM waiting w WHERE w.tenant = line_tenants.tenant);
      INSERT INTO line_count (id, n, turn) SELECT 1, (SELECT COUNT(*) FROM waiting), COALESCE(MAX(last_grant), 0) FROM line_tenants;
    `);
  }

  size(): number {
    this.length ??= this.sql.exec<{ n: number }>("SELECT n FROM line_count WHERE id = 1").one().n;
    return this.length;
  }

  has(jobId: string): boolean {
    return this.sql.exec("SELECT 1 FROM waiting WHERE job_id = ?", jobId).toArray().length > 0;
  }

  /** Puts the job at the back of its tenant's line; one already in line keeps its place. */
  join(jobId: string, tenant: string, leaseMs: number): void {
    if (this.has(jobId)) return;
    const { seq } = this.sql.exec<{ seq: number }>("INSERT INTO waiting (job_id, tenant, lease_ms) VALUES (?, ?, ?) RETURNING seq", jobId, tenant, leaseMs).one();
    this.sql.exec(
      "INSERT INTO line_tenants (tenant, last_grant, head_seq) VALUES (?, 0, ?) ON CONFLICT (tenant) DO UPDATE SET head_seq = COALESCE(head_seq, excluded.head_seq)",
      tenant,
      seq,
    );
    this.sql.exec("UPDATE line_count SET n = n + 1 WHERE id = 1");
    this.length = undefined;
  }

  /** Takes the job out of the line, if it is in it. */
  leave(jobId: string): void {
    if (!this.size()) return;
    const row = this.sql.exec<{ tenant: string; seq: number }>("DELETE FROM waiting WHERE job_id = ? RETURNING tenant, seq", jobId).toArray()[0];
    if (!row) return;
    this.sql.exec("UPDATE line_count SET n = n - 1 WHERE id = 1");
    this.length = undefined;
    // The tenant's next job becomes its head (an index lookup on (tenant, seq)).
    this.sql.exec(
      "UPDATE line_tenants SET head_seq = (SELECT MIN(seq) FROM waiting WHERE tenant = ?) WHERE tenant = ? AND head_seq = ?",
      row.tenant,
      row.tenant,
      row.seq,
    );
  }

  /** The waiting job whose tenant was served longest ago: one tenant's burst cannot starve another. */
  next(): InLine | undefined {
    if (!this.size()) return undefined;
    return this.sql
      .exec<InLine>(
        `SELECT w.job_id, w.tenant, w.seq, w.lease_ms FROM line_tenants t INDEXED BY line_turns JOIN waiting w ON w.seq = t.head_seq
         WHERE t.head_seq IS NOT NULL ORDER BY t.last_grant, t.head_seq LIMIT 1`,
      )
      .toArray()[0];
  }

  /** The tenant was just granted a slot: its turn comes after every other waiting tenant's. */
  served(tenant: string): void {
    const { turn } = this.sql.exec<{ turn: number }>("UPDATE line_count SET turn = turn + 1 WHERE id = 1 RETURNING turn").one();
    this.sql.exec("INSERT INTO line_tenants (tenant, last_grant, head_seq) VALUES (?, ?, NULL) ON CONFLICT (tenant) DO UPDATE SET last_grant = excluded.last_grant", tenant, turn);
  }

  /** Up to `limit` jobs in order of arrival after `afterSeq`, up to `uptoSeq`. */
  range(afterSeq: number, uptoSeq: number, limit: number): InLine[] {
    return this.sql.exec<InLine>("SELECT job_id, tenant, seq, lease_ms FROM waiting WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?", afterSeq, uptoSeq, limit).toArray();
  }

  /** The last job to have joined (0 when none ever has). */
  lastSeq(): number {
    return this.sql.exec<{ s: number | null }>("SELECT MAX(seq) AS s FROM waiting").one().s ?? 0;
  }
}

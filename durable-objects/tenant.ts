import { DurableObject } from "cloudflare:workers";
import type { Env } from "../src/env";

/** How long an Idempotency-Key is remembered, as the contract says. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;

export type ClaimResult = { status: "claimed"; runId: string } | { status: "existing"; runId: string } | { status: "conflict"; runId: string };

/**
 * One per tenant: what is scoped to a tenant rather than to a job. Idempotency keys, the
 * A1111 options a tenant set, and client-chosen task ids (SD-on-EKS) that must be unique.
 */
export class TenantObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS claims (scope TEXT NOT NULL, key TEXT NOT NULL, hash TEXT NOT NULL, run_id TEXT NOT NULL, expires_at INTEGER, PRIMARY KEY (scope, key));
      CREATE TABLE IF NOT EXISTS options (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS results (id TEXT PRIMARY KEY, body TEXT NOT NULL, expires_at INTEGER NOT NULL);
    `);
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

  async lookup(scope: "idempotency" | "eks_task", key: string): Promise<string | null> {
    return (
      this.sql.exec<{ run_id: string }>("SELECT run_id FROM claims WHERE scope = ? AND key = ? AND (expires_at IS NULL OR expires_at >= ?)", scope, key, Date.now()).toArray()[0]?.run_id ??
      null
    );
  }

  async getOptions(): Promise<Record<string, unknown>> {
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

  async getResult(id: string): Promise<string | null> {
    return this.sql.exec<{ body: string }>("SELECT body FROM results WHERE id = ? AND expires_at >= ?", id, Date.now()).toArray()[0]?.body ?? null;
  }
}

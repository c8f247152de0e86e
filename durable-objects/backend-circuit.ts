import type { AttemptOutcome } from "../src/contracts/scheduler";

/**
 * Consecutive failures that open a backend's circuit, when they came from more than one tenant, the
 * others at least half as many as the one with the most (or the deployment has one tenant, or the
 * backend could not be reached): what one tenant's jobs ran into may be of their own making (a model
 * the backend lacks, inputs that make it fail), and must not close the backend to the others.
 */
export const CIRCUIT_THRESHOLD = 3;

export type CircuitHealth = { failures: number; open_until: number | null };

/** What a verdict did to the circuit: the scheduler starts or stops telling its line. */
export type CircuitChange = "opened" | "closed" | undefined;

/** An attempt's verdict, as the circuit weighs it. */
export type Verdict = {
  outcome: AttemptOutcome;
  /** The attempt was the half-open circuit's probe (see `judge` for what its failure does). */
  probe: boolean;
  tenant: string;
  /** The backend could not be reached at all: no request of a tenant's can cause that. */
  unreachable: boolean;
  now: number;
  /** Tenants in the deployment (with one, its failures are everyone's) and the cool-down: read only for a failure. */
  tenants: () => number;
  cooldownMs: () => number;
};

/** A backend's circuit breaker: its consecutive failures, each tenant's share of them, and when it reopens. */
export class BackendCircuit {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`
      CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY CHECK (id = 1), failures INTEGER NOT NULL, open_until INTEGER);
      DROP TABLE IF EXISTS failing_tenants;
      CREATE TABLE IF NOT EXISTS tenant_failures (tenant TEXT PRIMARY KEY, n INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS failed_probe (id INTEGER PRIMARY KEY CHECK (id = 1), tenant TEXT NOT NULL);
      INSERT OR IGNORE INTO health (id, failures, open_until) VALUES (1, 0, NULL);
    `);
  }

  health(): CircuitHealth {
    return this.sql.exec<CircuitHealth>("SELECT failures, open_until FROM health WHERE id = 1").one();
  }

  /**
   * A success closes the circuit; a failure counts towards opening it, from more than one tenant in
   * fair shares (see CIRCUIT_THRESHOLD). A failed probe opens it again when no request can have
   * caused the failure (unreachable, or a single tenant), or when the probe before it in this
   * half-open spell was another tenant's and failed too: one tenant's probe alone may have failed of
   * its own making (a model the backend lacks, through a pin), and one such job per cool-down would
   * keep a recovered backend closed to everyone. Otherwise the circuit stays half-open and the next
   * probe goes, the line's round-robin offering it to another tenant first.
   */
  judge(v: Verdict): CircuitChange {
    if (v.outcome === "success") {
      // Already closed and counting nothing (the everyday case): nothing to write.
      const h = this.health();
      if (h.failures === 0 && h.open_until === null) return undefined;
      this.sql.exec("UPDATE health SET failures = 0, open_until = NULL WHERE id = 1");
      this.sql.exec("DELETE FROM tenant_failures");
      this.sql.exec("DELETE FROM failed_probe");
      return "closed";
    }
    if (v.outcome !== "failure") return undefined;
    const h = this.health();
    const failures = h.failures + 1;
    this.sql.exec("INSERT INTO tenant_failures (tenant, n) VALUES (?, 1) ON CONFLICT (tenant) DO UPDATE SET n = n + 1", v.tenant);
    const { most, others } = this.sql.exec<{ most: number; others: number }>("SELECT MAX(n) AS most, SUM(n) - MAX(n) AS others FROM tenant_failures").one();
    // The others must have met at least half as many failures as the tenant that met the most: one
    // tenant's own failures, however many, do not let a single one of another's close a shared
    // backend to everyone.
    const backendAlone = v.unreachable || v.tenants() <= 1;
    const shared = backendAlone || others >= Math.ceil(most / 2);
    // A probe's verdict that comes after the circuit closed (another attempt's success) is an ordinary one.
    const probe = v.probe && h.open_until !== null;
    const open = probe ? backendAlone || this.probeFailedBefore(v.tenant) : failures >= CIRCUIT_THRESHOLD && shared;
    if (open) this.sql.exec("DELETE FROM failed_probe");
    this.sql.exec("UPDATE health SET failures = ?, open_until = ? WHERE id = 1", failures, open ? v.now + v.cooldownMs() : h.open_until);
    return open && h.open_until === null ? "opened" : undefined;
  }

  /** Whether another tenant's probe failed last in this half-open spell; this tenant's failure is noted as the last. */
  private probeFailedBefore(tenant: string): boolean {
    const last = this.sql.exec<{ tenant: string }>("SELECT tenant FROM failed_probe WHERE id = 1").toArray()[0]?.tenant;
    this.sql.exec("INSERT OR REPLACE INTO failed_probe (id, tenant) VALUES (1, ?)", tenant);
    return last !== undefined && last !== tenant;
  }
}

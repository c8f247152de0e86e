import { a1111Call } from "../src/backends/a1111-api";
import type { BackendConfig } from "../src/config";
import type { RescanKind } from "../src/contracts/scheduler";
import { withDeadline } from "../src/lib/deadline";

/** A backend rescans its folders at most this often, however many ask. */
export const RESCAN_INTERVAL_MS = 30_000;
const RESCAN_TIMEOUT_MS = 30_000;

/**
 * A1111's refresh-checkpoints / refresh-loras on one backend, for the whole deployment. Any tenant
 * may ask for a rescan, A1111 runs it under the lock its generations take, and the gateway answers
 * from hundreds of isolates: a rule kept in an isolate would bound nothing, so it is kept here, in
 * the backend's scheduler object (the one place every request for this backend meets), in SQLite
 * so an object that restarted still knows its last rescan.
 */
export class BackendRescans {
  /** Rescans under way: an object's requests may share a promise (a Worker's may not). */
  private readonly running = new Map<RescanKind, Promise<void>>();

  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS rescans (what TEXT PRIMARY KEY, config TEXT NOT NULL, at INTEGER NOT NULL)");
  }

  /**
   * Rescans unless the backend (under configuration `config`) did within RESCAN_INTERVAL_MS;
   * callers at the same time share one. Whether one ran for this call (then `after` ran after it).
   */
  async run(b: BackendConfig, config: string, what: RescanKind, after: () => Promise<unknown>): Promise<boolean> {
    const running = this.running.get(what);
    if (running) return running.then(() => true);
    const last = this.sql.exec<{ at: number }>("SELECT at FROM rescans WHERE what = ? AND config = ?", what, config).toArray()[0];
    if (last && Date.now() - last.at < RESCAN_INTERVAL_MS) return false;
    // Written before the call: one that fails or hangs counts too, or a failing backend would be asked on every call.
    this.sql.exec("INSERT OR REPLACE INTO rescans (what, config, at) VALUES (?, ?, ?)", what, config, Date.now());
    const rescan = (async () => {
      try {
        await withDeadline(RESCAN_TIMEOUT_MS, (signal) => a1111Call(b, `/sdapi/v1/refresh-${what}`, { body: {}, timeoutMs: RESCAN_TIMEOUT_MS, signal }));
        await after();
      } catch {
        // The client's answer is A1111's `null` whatever happened here; the next rescan is due after the interval.
      } finally {
        this.running.delete(what);
      }
    })();
    this.running.set(what, rescan);
    await rescan;
    return true;
  }
}

import { a1111Call } from "../src/backends/a1111-api";
import type { BackendConfig } from "../src/config";
import type { RescanKind } from "../src/contracts/scheduler";
import { withDeadline } from "../src/lib/deadline";

/** A backend rescans its folders at most this often, however many ask. */
export const RESCAN_INTERVAL_MS = 10_000;
const RESCAN_TIMEOUT_MS = 30_000;
/** A caller waiting for the interval's end looks again this often (a rescan may have begun meanwhile). */
const WAIT_STEP_MS = 500;
/** Bounds a caller's turns: waits through the interval, then a rescan under way, then its own. */
const MAX_TURNS = Math.ceil(RESCAN_INTERVAL_MS / WAIT_STEP_MS) + 4;

/**
 * A1111's refresh-checkpoints / refresh-loras on one backend, for the whole deployment. Any tenant
 * may ask for a rescan, A1111 runs it under the lock its generations take, and the gateway answers
 * from hundreds of isolates: a rule kept in an isolate would bound nothing, so it is kept here, in
 * the backend's scheduler object (the one place every request for this backend meets), in SQLite
 * so an object that restarted still knows its last rescan. A refresh is never dropped: it returns
 * once a rescan has ended that was under way or began after it was asked, as A1111's own returns
 * after its rescan; callers at the same time share one (a file added after the shared rescan began
 * waits for the next refresh), and one asked soon after a rescan ended waits for the interval's end
 * and a rescan then.
 */
export class BackendRescans {
  /** Rescans under way: an object's requests may share a promise (a Worker's may not). */
  private readonly running = new Map<RescanKind, Promise<void>>();

  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS rescans (what TEXT PRIMARY KEY, config TEXT NOT NULL, at INTEGER NOT NULL)");
  }

  /**
   * Returns once a rescan of the backend (under configuration `config`) that was under way or began
   * after this call has ended (`after` ran after it); false only when none could begin within the
   * caller's turns.
   */
  async run(b: BackendConfig, config: string, what: RescanKind, after: () => Promise<unknown>): Promise<boolean> {
    for (let turn = 0; turn < MAX_TURNS; turn++) {
      const running = this.running.get(what);
      if (running) {
        await running;
        return true;
      }
      const last = this.sql.exec<{ at: number }>("SELECT at FROM rescans WHERE what = ? AND config = ?", what, config).toArray()[0];
      const wait = last ? last.at + RESCAN_INTERVAL_MS - Date.now() : 0;
      if (wait > 0) {
        await new Promise((r) => setTimeout(r, Math.min(wait, WAIT_STEP_MS)));
        continue;
      }
      await this.start(b, config, what, after);
      return true;
    }
    return false;
  }

  private start(b: BackendConfig, config: string, what: RescanKind, after: () => Promise<unknown>): Promise<void> {
    // Written before the call: one that fails or hangs counts too, or a failing backend would be asked on every call.
    const startedAt = Date.now();
    this.sql.exec("INSERT OR REPLACE INTO rescans (what, config, at) VALUES (?, ?, ?)", what, config, startedAt);
    const done = (async () => {
      try {
        await withDeadline(RESCAN_TIMEOUT_MS, (signal) => a1111Call(b, `/sdapi/v1/refresh-${what}`, { body: {}, timeoutMs: RESCAN_TIMEOUT_MS, signal }));
        await after();
      } catch {
        // The client's answer is A1111's `null` whatever happened here; the next rescan is due after the interval.
      } finally {
        this.running.delete(what);
      }
    })();
    this.running.set(what, done);
    return done;
  }
}

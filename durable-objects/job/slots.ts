/** The job's side of its backends' slots: acquired, renewed, released, judged, or left to lapse (orphaned). */
import { config, type BackendConfig } from "../../src/config";
import { SLOT_LEASE_MS, type AcquireResult, type AttemptOutcome, type ReleaseOutcome } from "../../src/contracts/scheduler";
import type { JobRoom } from "./room";
import type { AttemptRow, JobRow } from "./tables";
import { schedulerStub } from "../../src/schedulers";
import { untilAborted, withDeadline } from "../../src/lib/deadline";

/** How often a job renews the slot its generation occupies (well inside SLOT_LEASE_MS). */
export const RENEW_MS = 20_000;

/**
 * A scheduler call is waited for this long at most: its object may be overloaded or reset, and a
 * job's step must not wait on it for good. What an unanswered call may have done is undone there
 * anyway (a slot's lease lapses, a claim lapses, a lapsed slot is checked against the job).
 */
export const SCHEDULER_CALL_MS = 10_000;
const bounded = <T>(call: Promise<T>): Promise<T> => withDeadline(SCHEDULER_CALL_MS, (signal) => untilAborted(call, signal));

export class Slots {
  constructor(private readonly room: JobRoom) {}

  async acquire(row: Pick<JobRow, "id" | "tenant">, backend: BackendConfig, enqueue: boolean): Promise<AcquireResult> {
    try {
      return await bounded(this.scheduler(backend.name).acquire({
        backend: backend.name,
        jobId: row.id,
        tenant: row.tenant,
        maxConcurrency: backend.max_concurrency,
        cooldownMs: backend.circuit_cooldown_s * 1000,
        leaseMs: SLOT_LEASE_MS,
        enqueue,
      }));
    } catch {
      return { status: "open", retry_at: Date.now() + 1000 };
    }
  }

  /** Keeps the slot of an attempt under way (at most every RENEW_MS unless `now`). */
  async renew(attempt: AttemptRow, now = false): Promise<void> {
    const memory = this.room.memory;
    // A slot given back must not be taken again by a renewal (the scheduler's renew re-takes it).
    if (memory.slotReturned === attempt.n) return;
    if (!now && Date.now() - memory.renewedAt < RENEW_MS) return;
    memory.renewedAt = Date.now();
    const row = this.room.ledger.mustRow();
    await bounded(this.scheduler(attempt.backend).renew(row.id, row.tenant, SLOT_LEASE_MS)).catch(() => undefined);
  }

  /** The attempt's generation may still run: its slot stays taken until it presumably cannot. */
  async orphan(attempt: AttemptRow, verdict?: AttemptOutcome): Promise<void> {
    const timeoutMs = (config.backend(this.room.env, attempt.backend)?.timeout_s ?? 600) * 1000;
    await bounded(this.scheduler(attempt.backend).orphan(this.room.ledger.mustRow().id, attempt.n, attempt.started_at, timeoutMs, verdict)).catch(() => undefined);
  }

  /** The verdict on an attempt whose slot went back when its backend answered (see AttemptCall's submit). */
  async judge(backend: string, outcome: AttemptOutcome): Promise<void> {
    if (!backend) return;
    const row = this.room.ledger.mustRow();
    await bounded(this.scheduler(backend).judge(row.id, outcome, row.tenant)).catch(() => undefined);
  }

  /** `unreachable`: the backend failed the attempt by not answering at all (see the scheduler's circuit). */
  async release(backend: string, outcome: ReleaseOutcome, unreachable = false): Promise<void> {
    if (!backend) return;
    await bounded(this.scheduler(backend).release(this.room.ledger.mustRow().id, outcome, unreachable)).catch(() => undefined);
  }

  /** Leaves these lines (and gives back a claim one of them granted meanwhile), all at once. */
  async releaseAll(lines: readonly string[]): Promise<void> {
    await Promise.all(lines.map((name) => this.release(name, "neutral")));
  }

  private scheduler(name: string) {
    return schedulerStub(this.room.env, name);
  }
}

/** What the parts of a job object share: its state, its environment, its ledger and its alarm. */
import type { AcquireResult } from "../../src/contracts/scheduler";
import type { Env } from "../../src/env";
import type { FollowUps } from "./follow-ups";
import type { JobLedger } from "./ledger";

/**
 * What this instance alone knows of its attempt, deliberately not in storage: each is about the
 * instance itself, and a restart must forget it (see the README's "Durability").
 */
export class InstanceMemory {
  /** The attempt whose backend call this instance has in flight: after a restart none is, which is how a lost call is found. */
  inflight: number | undefined;
  /** The backend whose scheduler granted this job a slot from its line, for the next step (see `wake`). */
  grantedBy: string | undefined;
  /** The attempt whose slot went back as soon as its backend answered (see AttemptCall's `submit`). */
  slotReturned: number | undefined;
  /** When this instance last renewed the current attempt's slot. */
  renewedAt = 0;
  /** The attempt whose call this instance saw go unanswered for the backend's whole `timeout_s` (the backend's fault, unlike a call a restart cut). */
  unanswered: number | undefined;
  /**
   * The attempt whose call returned but whose outcome could not be recorded, nor the job failed
   * for it (see AttemptCall's `apply`): held in flight, never taken for lost, and tried again.
   */
  unapplied: number | undefined;
  /** The attempt whose skip this instance sent (see JobObject's skip). */
  skipped: number | undefined;
  /**
   * The lines a dispatch is joining, until their answers come and what came of it is written (see
   * the runner's dispatch): held here rather than written first, which would hold the requests
   * back for a commit. Lost with the instance, like the requests' answers: the dispatch backstop
   * (the alarm) asks again, and a wake-up the new instance does not expect is answered no.
   */
  joining: ReadonlySet<string> | undefined;
  /**
   * The new job's first scheduler request, sent before its creation was written (see the runner's
   * `open`), for its first dispatch to take up rather than ask again.
   */
  opening: { backend: string; enqueue: boolean; answer: Promise<AcquireResult> } | undefined;

  /** The lines the job waits in: those written, and those being joined. */
  lines(written: readonly string[]): string[] {
    return this.joining ? [...new Set([...written, ...this.joining])] : [...written];
  }
}

export interface JobRoom {
  readonly ctx: DurableObjectState;
  readonly env: Env;
  readonly ledger: JobLedger;
  readonly memory: InstanceMemory;
  /** Bookkeeping held until the next webhook has gone out. */
  readonly followUps: FollowUps;
  /** Sets the one alarm to the earliest work due; `stepFollows` when a step runs next (see JobObject's reschedule). */
  reschedule(stepFollows?: boolean): Promise<void>;
}

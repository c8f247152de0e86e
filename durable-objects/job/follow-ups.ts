/**
 * Bookkeeping that follows a job's end but is no part of what its client hears: the slot's
 * release, the index's end report, the discarded images. It is held until the job's next webhook
 * request has gone out (or the step ends with none due), so that the receiver hears first: an
 * object's thread is shared with other objects, and the scheduler's and index's answers are
 * not waited for either way. Lost with the instance, like any background work; each has its
 * backstop (a slot's lease lapses, the index checks its active rows, retention deletes images).
 */
export class FollowUps {
  private held: (() => Promise<unknown>)[] = [];

  constructor(private readonly ctx: DurableObjectState) {}

  add(work: () => Promise<unknown>): void {
    this.held.push(work);
  }

  /** Starts everything held, in the background. */
  run(): void {
    for (const work of this.held.splice(0)) this.ctx.waitUntil(work().catch((err: unknown) => console.error("job follow-up failed", err instanceof Error ? err.message : String(err))));
  }
}

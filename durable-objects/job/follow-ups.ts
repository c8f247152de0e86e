/**
 * Bookkeeping that follows a job's end but is no part of what its client hears: the slot's
 * release, the discarded images. (The index's end report is not among them: it comes before the
 * webhook, see `finish`.) It is held until the job's next webhook request has gone out (or the
 * step ends with none due), so that the receiver hears first: an object's thread is shared with
 * other objects, and nothing here is waited for either way. What no GPU waits on (all but a
 * slot's release) also lets the receiver's answer come first. Lost with the instance, like any
 * background work; each has its backstop (a slot's lease lapses, retention deletes images).
 */

/**
 * A slot's release is held no longer than this, whatever holds up the webhook (another step
 * under way, such as a slow receiver's earlier event): the GPU must not wait on a receiver.
 */
const SLOT_HOLD_MAX_MS = 250;

export class FollowUps {
  private held: { work: () => Promise<unknown>; afterAnswer: boolean }[] = [];
  private bound: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly ctx: DurableObjectState) {}

  /** `afterAnswer`: nothing waits on it, so it may also wait for the receiver's answer. */
  add(work: () => Promise<unknown>, afterAnswer = false): void {
    this.held.push({ work, afterAnswer });
    if (!afterAnswer) this.bound ??= setTimeout(() => this.startUnanswered(), SLOT_HOLD_MAX_MS);
  }

  /**
   * The webhook request has been handed to the runtime: what a GPU waits on starts on the next
   * turn, not this one, so the request's bytes are written before the release (another object's
   * work, on the same thread when it is local) takes the thread.
   */
  sent(): void {
    this.clearBound();
    if (this.held.some((h) => !h.afterAnswer)) this.bound = setTimeout(() => this.startUnanswered(), 0);
  }

  /** The receiver answered (or no request went out): everything held starts, in the background. */
  run(): void {
    this.clearBound();
    this.start(this.held.splice(0));
  }

  private startUnanswered(): void {
    this.bound = undefined;
    this.start(this.held.filter((h) => !h.afterAnswer));
    this.held = this.held.filter((h) => h.afterAnswer);
  }

  private clearBound(): void {
    clearTimeout(this.bound);
    this.bound = undefined;
  }

  private start(due: { work: () => Promise<unknown> }[]): void {
    for (const { work } of due) this.ctx.waitUntil(work().catch((err: unknown) => console.error("job follow-up failed", err instanceof Error ? err.message : String(err))));
  }
}

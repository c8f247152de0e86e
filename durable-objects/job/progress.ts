/** Live progress: read from the backend, kept while the job runs, its events rate-limited. */
import { adapterFor } from "../../src/backends";
import type { BackendAdapter, BackendPreview, BackendProgress } from "../../src/backends/types";
import { config } from "../../src/config";
import type { JobStatus } from "../../src/schemas/job";
import type { JobRoom } from "./room";
import type { SubscriberFeed } from "./subscriber";
import type { AttemptRow, JobRow } from "./tables";
import { webhookFor } from "./transitions";
import { v1Progress } from "./view";
import { bytesToBase64 } from "../../src/lib/base64";
import { withDeadline } from "../../src/lib/deadline";

/**
 * While a synchronous call runs, its backend is asked for progress this often, then less often
 * once the call is long: all readings of one call happen in one invocation, whose subrequests are
 * capped (1,000 on older Workers Paid plans), so a 30-minute call stays near 290 readings (580 subrequests).
 */
const PROGRESS_READ_MS = 1_000;
const PROGRESS_READ_SLOW_MS = 10_000;
const PROGRESS_FAST_FOR_MS = 120_000;
/** `job.progress` events are at least this far apart: at most 2 in any second. */
const PROGRESS_EVENT_GAP_MS = 550;
/** A preview image read for a client is reused for this long, so polling clients cost the backend little; a pushed one is handed on at most this often. */
const PREVIEW_TTL_MS = 500;
export const PROGRESS_TIMEOUT_MS = 3_000;

/** The id a backend knows an attempt by (A1111's `force_task_id`). */
export const taskIdOf = (runId: string, attempt: number): string => `${runId}-${attempt}`;

export class LiveProgress {
  /** The last preview image read for a client (kept in memory only: images stay out of storage). */
  private preview: { attempt: number; at: number; image: string | null } | undefined;
  /** The progress webhooks being rendered and queued. */
  private webhooks: Promise<void> = Promise.resolve();
  /** When a pushed preview was last handed to the job's subscriber. */
  private previewSentAt = 0;
  /** The newest preview the running attempt's backend pushed (ComfyUI's), for a client that asks: memory only. */
  private pushed: { attempt: number; preview: BackendPreview } | undefined;

  constructor(
    private readonly room: JobRoom,
    private readonly feed: SubscriberFeed,
  ) {}

  /**
   * The running job's figures as the backend last reported them, and its preview image when
   * `image` is asked for (read from the backend at most every PREVIEW_TTL_MS). Null figures
   * before the job runs and after it ends.
   */
  async live(row: JobRow, opts: { image: boolean }): Promise<{ status: JobStatus; progress: BackendProgress | null; image: string | null }> {
    if (row.status !== "running") return { status: row.status, progress: null, image: null };
    const attempt = this.room.ledger.currentAttempt();
    let image: string | null = null;
    const pushed = this.pushed?.attempt === attempt?.n ? this.pushed?.preview : undefined;
    if (opts.image && pushed) image = bytesToBase64(pushed.image);
    else if (opts.image && attempt) {
      const cached = this.preview;
      if (cached && cached.attempt === attempt.n && Date.now() - cached.at < PREVIEW_TTL_MS) image = cached.image;
      else {
        const reading = await this.read(attempt, true);
        image = reading?.image ?? null;
        this.preview = { attempt: attempt.n, at: Date.now(), image };
      }
    }
    return { status: row.status, progress: this.room.ledger.storedProgress()?.progress ?? null, image };
  }

  /** Reads progress every PROGRESS_READ_MS (later PROGRESS_READ_SLOW_MS) until `signal` (the end of the call) says stop. */
  async watch(n: number, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    while (!signal.aborted) {
      const every = Date.now() - started < PROGRESS_FAST_FOR_MS ? PROGRESS_READ_MS : PROGRESS_READ_SLOW_MS;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, every);
        signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      });
      const attempt = this.room.ledger.currentAttempt();
      if (signal.aborted || attempt?.n !== n) return;
      await this.read(attempt, false, signal);
    }
  }

  /** One reading from the attempt's backend, recorded when the attempt is still the job's. */
  async read(attempt: AttemptRow, image: boolean, stop?: AbortSignal) {
    const { env, ledger } = this.room;
    const backend = config.backend(env, attempt.backend);
    const adapter: BackendAdapter | undefined = backend ? adapterFor(backend) : undefined;
    if (!adapter?.progress) return undefined;
    const progress = adapter.progress.bind(adapter);
    const reading = await withDeadline(PROGRESS_TIMEOUT_MS, (signal) => progress({ taskId: taskIdOf(ledger.mustRow().id, attempt.n), externalId: attempt.external_id ?? undefined, image, signal }), stop).catch(() => undefined);
    if (reading) this.record(attempt.n, reading.progress);
    return reading;
  }

  /**
   * Figures for attempt `n`, read here or pushed by its backend (ComfyUI's socket), kept while it
   * is the job's running attempt; a `job.progress` event also goes to the job's webhook if it asked.
   */
  record(n: number, p: BackendProgress): void {
    const { ledger } = this.room;
    const row = ledger.row();
    if (!row || row.status !== "running" || ledger.currentAttempt()?.n !== n) return;
    if (!ledger.recordProgress(n, p, v1Progress(p), PROGRESS_EVENT_GAP_MS)) return;
    // One render after another, so the webhooks queue in the order of their figures.
    const next = this.webhooks.then(() => this.queueWebhook(n));
    this.webhooks = next.catch((err: unknown) => console.error("progress webhook not queued", err instanceof Error ? err.message : String(err)));
    this.room.ctx.waitUntil(this.webhooks);
  }

  /**
   * A preview attempt `n`'s backend pushed (ComfyUI's frames), handed to the job's subscriber while
   * it is the running attempt, at most one per PREVIEW_TTL_MS; kept nowhere (images stay out of storage).
   */
  previewed(n: number, p: BackendPreview): void {
    const { ledger } = this.room;
    if (ledger.row()?.status !== "running" || ledger.currentAttempt()?.n !== n) return;
    this.pushed = { attempt: n, preview: p };
    const now = Date.now();
    if (now - this.previewSentAt < PREVIEW_TTL_MS) return;
    this.previewSentAt = now;
    this.feed.previewed(p);
  }

  /** The job as it runs now, rendered for its webhook and queued, if it still runs attempt `n`. */
  private async queueWebhook(n: number): Promise<void> {
    const { ledger } = this.room;
    const now = Date.now();
    const current = () => ledger.row()?.status === "running" && ledger.currentAttempt()?.n === n;
    if (!current()) return;
    const webhook = await webhookFor(this.room, ledger.mustRow(), "job.progress", now);
    // Rendering awaited: an end meanwhile has its own event, which this one must not follow.
    if (!webhook || !current()) return;
    ledger.queueProgressWebhook(webhook, now);
    await this.room.reschedule();
  }
}

/**
 * Hands the job's events to its subscriber (see src/contracts/job-feed.ts), in order, best effort:
 * a subscriber that is down or slow misses news, never holds up or fails the job.
 */
import type { BackendPreview } from "../../src/backends/types";
import type { JobSubscriberRpc } from "../../src/contracts/job-feed";
import { rpc } from "../../src/contracts/rpc";
import type { JobRoom } from "./room";
import { parseInput, type JobRow } from "./tables";
import { snapshot } from "./view";

/** A notice that takes longer than this is given up (the subscriber misses it). */
const NOTICE_TIMEOUT_MS = 5_000;

/** `call`, given up after NOTICE_TIMEOUT_MS: what comes after it never waits longer. */
async function bounded(call: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("job subscriber timed out")), NOTICE_TIMEOUT_MS)));
  await Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}

export class SubscriberFeed {
  /** The last event handed over by this instance; after a restart only news from then on goes out. */
  private sentSeq: number | undefined;
  private sending: Promise<void> = Promise.resolve();
  /** The job's subscriber (null: none), read once: a job's input never changes. */
  private name: string | null | undefined;
  /** The newest preview not yet handed over: one waits at most, behind the news already on its way. */
  private preview: BackendPreview | undefined;

  constructor(private readonly room: JobRoom) {}

  /** Told of every event written: sends what is new once the writing transaction is over. */
  poke(): void {
    this.queue(() => this.send());
  }

  /** A preview the backend pushed, for the subscriber's clients, after the news before it. */
  previewed(p: BackendPreview): void {
    if (this.name === null) return;
    const queued = this.preview !== undefined;
    this.preview = p;
    if (!queued) this.queue(() => this.sendPreview());
  }

  private queue(work: () => Promise<void>): void {
    const next = this.sending.then(work);
    this.sending = next.catch((err: unknown) => console.error("job subscriber not told", err instanceof Error ? err.message : String(err)));
    this.room.ctx.waitUntil(this.sending);
  }

  /** The subscriber's name and the job's row, or undefined when there is none to tell. */
  private audience(): { name: string; row: JobRow } | undefined {
    if (this.name === null) return undefined;
    const row = this.room.ledger.row();
    if (!row) return undefined;
    this.name ??= parseInput(row).subscriber ?? null;
    return this.name === null ? undefined : { name: this.name, row };
  }

  private async sendPreview(): Promise<void> {
    const preview = this.preview;
    this.preview = undefined;
    const to = this.audience();
    if (!preview || !to) return;
    await bounded(rpc<JobSubscriberRpc>(this.room.env.JOB_SUBSCRIBERS, to.name).jobPreview({ run_id: to.row.id, ...preview }));
  }

  private async send(): Promise<void> {
    const { env, ledger } = this.room;
    const to = this.audience();
    if (!to) return;
    const { name, row } = to;
    const all = ledger.eventsAfter(this.sentSeq ?? 0);
    // A fresh instance does not know what its predecessor sent: it starts from the newest event.
    const events = this.sentSeq === undefined ? all.slice(-1) : all;
    const last = events.at(-1);
    if (!last) return;
    this.sentSeq = last.seq;
    // Full once the job has ended (a graph kept in R2 read back): the end's rendering needs the graph.
    const notice = { events, snapshot: await snapshot(env, ledger, row, { full: true }), progress: ledger.storedProgress()?.progress ?? null };
    await bounded(rpc<JobSubscriberRpc>(env.JOB_SUBSCRIBERS, name).jobNotice(notice));
  }
}

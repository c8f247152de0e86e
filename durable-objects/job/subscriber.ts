/**
 * Hands the job's events to its subscriber (see src/contracts/job-feed.ts), in order, best effort:
 * a subscriber that is down or slow misses news, never holds up or fails the job.
 */
import type { JobSubscriberRpc } from "../../src/contracts/job-feed";
import { rpc } from "../../src/contracts/rpc";
import type { JobRoom } from "./room";
import { parseInput } from "./tables";
import { snapshot } from "./view";

/** A notice that takes longer than this is given up (the subscriber misses it). */
const NOTICE_TIMEOUT_MS = 5_000;

export class SubscriberFeed {
  /** The last event handed over by this instance; after a restart only news from then on goes out. */
  private sentSeq: number | undefined;
  private sending: Promise<void> = Promise.resolve();
  /** The job's subscriber (null: none), read once: a job's input never changes. */
  private name: string | null | undefined;

  constructor(private readonly room: JobRoom) {}

  /** Told of every event written: sends what is new once the writing transaction is over. */
  poke(): void {
    const next = this.sending.then(() => this.send());
    this.sending = next.catch((err: unknown) => console.error("job subscriber not told", err instanceof Error ? err.message : String(err)));
    this.room.ctx.waitUntil(this.sending);
  }

  private async send(): Promise<void> {
    const { env, ledger } = this.room;
    if (this.name === null) return;
    const row = ledger.row();
    if (!row) return;
    this.name ??= parseInput(row).subscriber ?? null;
    const name = this.name;
    if (name === null) return;
    const all = ledger.eventsAfter(this.sentSeq ?? 0);
    // A fresh instance does not know what its predecessor sent: it starts from the newest event.
    const events = this.sentSeq === undefined ? all.slice(-1) : all;
    const last = events.at(-1);
    if (!last) return;
    this.sentSeq = last.seq;
    const notice = { events, snapshot: await snapshot(env, ledger, row), progress: ledger.storedProgress()?.progress ?? null };
    const subscriber = rpc<JobSubscriberRpc>(env.JOB_SUBSCRIBERS, name);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("job subscriber timed out")), NOTICE_TIMEOUT_MS)));
    await Promise.race([subscriber.jobNotice(notice), timeout]).finally(() => clearTimeout(timer));
  }
}

/**
 * The bytes of a feed's binary frames (src/contracts/job-feed.ts): each frame's prefix, then one of
 * the job's stored outputs, read from R2 before the notice's messages go out, so they go out in
 * order. Objects of a class may share an isolate and its 128 MB: one notice's images are in memory
 * at a time per isolate (a module-level turn, which is per isolate), at most MAX_FRAME_BYTES of them.
 */
import type { BinaryFrame, FeedMessage } from "../src/contracts/job-feed";
import { untilAborted, withDeadline } from "../src/lib/deadline";

/** A notice's images past this many bytes are not sent as frames (they stay in the history and `/v1`). */
export const MAX_FRAME_BYTES = 32 * 1024 * 1024;
/** A notice's reads, all together: the isolate's next notices (of any tenant) wait behind them. */
const READS_TIMEOUT_MS = 10_000;

let turn: Promise<unknown> = Promise.resolve();

const isFrame = (m: FeedMessage): m is BinaryFrame => typeof m !== "string";

/**
 * The messages with each frame's bytes in place (its `lead` before it); a frame whose output cannot
 * be read in time (gone, R2 failing or slow) or does not fit is left out with its lead: the image
 * stays where the client can read it.
 */
export function withFrames(bucket: R2Bucket, keys: readonly string[], messages: FeedMessage[], maxBytes = MAX_FRAME_BYTES): Promise<(string | Uint8Array)[]> {
  if (!messages.some(isFrame)) return Promise.resolve(messages.filter((m) => typeof m === "string"));
  const mine = turn.then(() => withDeadline(READS_TIMEOUT_MS, (signal) => fill(bucket, keys, messages, maxBytes, signal)));
  turn = mine.catch(() => undefined);
  return mine;
}

async function fill(bucket: R2Bucket, keys: readonly string[], messages: FeedMessage[], maxBytes: number, signal: AbortSignal): Promise<(string | Uint8Array)[]> {
  let left = maxBytes;
  const out: (string | Uint8Array)[] = [];
  for (const m of messages) {
    if (!isFrame(m)) {
      out.push(m);
      continue;
    }
    const frame = signal.aborted ? undefined : await read(bucket, keys[m.output], m.prefix, left, signal);
    if (!frame) continue;
    left -= frame.length;
    if (m.lead !== undefined) out.push(m.lead);
    out.push(frame);
  }
  return out;
}

async function read(bucket: R2Bucket, key: string | undefined, prefix: Uint8Array, left: number, signal: AbortSignal): Promise<Uint8Array | undefined> {
  if (key === undefined) return undefined;
  try {
    const object = await untilAborted(bucket.get(key), signal);
    if (!object) return undefined;
    if (prefix.length + object.size > left) {
      await object.body.cancel();
      return undefined;
    }
    const bytes = new Uint8Array(prefix.length + object.size);
    bytes.set(prefix);
    bytes.set(new Uint8Array(await untilAborted(object.arrayBuffer(), signal)), prefix.length);
    return bytes;
  } catch {
    // Gone, R2 failing or past the deadline: the image stays where the client can read it.
    return undefined;
  }
}

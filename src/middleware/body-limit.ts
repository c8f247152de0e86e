import { createMiddleware } from "hono/factory";
import { EaselError } from "../errors";
import { readAtMost } from "../lib/streams";

/** How much more of an over-limit body without a length is read, and dropped, before the 413. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_MAX_MS = 10_000;

const tooLarge = (maxSize: number) => new EaselError(413, "payload_too_large", `the request body is over ${maxSize / 1024 / 1024} MiB`);

/** Reads what is left of a body and drops it, within the bounds; then lets it go. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  const until = Date.now() + DRAIN_MAX_MS;
  let read = 0;
  try {
    while (read <= DRAIN_MAX_BYTES && Date.now() < until) {
      const chunk = await reader.read();
      if (chunk.done) return;
      read += chunk.value.byteLength;
    }
    await reader.cancel();
  } catch {
    // A client that hung up: nothing left to read.
  }
}

/**
 * A 413 for a body over `maxSize`. One that declares its length is refused unread (workerd gives
 * that connection up cleanly). One without (chunked) is counted as it is read; past the limit the
 * rest is read and dropped before the answer, within bounds: under wrangler dev a body left half
 * read broke the next request on the proxy's pooled connection, whoever sent it (a 503).
 */
export const bodyLimit = (maxSize: number) =>
  createMiddleware(async (c, next) => {
    const req = c.req.raw;
    if (!req.body) return next();
    if (req.headers.has("content-length") && !req.headers.has("transfer-encoding")) {
      if (Number.parseInt(req.headers.get("content-length") ?? "0", 10) > maxSize) throw tooLarge(maxSize);
      return next();
    }
    const reader = req.body.getReader();
    const body = await readAtMost(reader, maxSize);
    if (!body) {
      await drain(reader);
      throw tooLarge(maxSize);
    }
    // A GET or HEAD may not carry a body (a Request with one cannot be made): what it sent is read, within bounds, and dropped.
    if (req.method !== "GET" && req.method !== "HEAD") c.req.raw = new Request(req, { body });
    return next();
  });

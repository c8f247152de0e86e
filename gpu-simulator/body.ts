import type { IncomingMessage } from "node:http";

/** A request body is at most this (a 4 × 2048² batch of base64 PNGs fits). */
const MAX_BODY = 64 * 1024 * 1024;

/** The whole request body; undefined when it is over MAX_BODY. */
export async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

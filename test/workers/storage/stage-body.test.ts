import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EaselError } from "../../../src/errors";
import { stageChunkedBody } from "../../../src/storage/stage-body";

const MiB = 1024 * 1024;
const OPTS = { inlineMax: 8 * MiB, maxBytes: 40 * MiB };

/** A body of `size` bytes arriving in uneven chunks, with no declared length (as a chunked upload). */
function chunked(size: number, chunk = 777_777): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      const n = Math.min(chunk, size - sent);
      const bytes = new Uint8Array(n);
      for (let i = 0; i < n; i++) bytes[i] = 65 + ((sent + i) % 26);
      sent += n;
      controller.enqueue(bytes);
    },
  });
}

/** The bytes `chunked(size)` sends, as a digest: comparing 21 MiB arrays element by element would swamp the test's heap. */
async function expectedDigest(size: number): Promise<string> {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = 65 + (i % 26);
  return digest(out);
}
const digest = async (bytes: Uint8Array | ArrayBuffer): Promise<string> => Buffer.from(await crypto.subtle.digest("SHA-256", bytes)).toString("hex");

describe("a callback body without a declared length", () => {
  it("comes back as text when small", async () => {
    const result = await stageChunkedBody(env.IMAGES, "callbacks/test/small", chunked(1000, 300), OPTS);
    expect(result).toEqual({ text: "ABCDEFGHIJKLMNOPQRSTUVWXYZ".repeat(40).slice(0, 1000) });
    expect(await env.IMAGES.head("callbacks/test/small")).toBeNull();
  });

  it("goes into R2 byte for byte when large", async () => {
    const size = 21 * MiB + 12345;
    const result = await stageChunkedBody(env.IMAGES, "callbacks/test/large", chunked(size), OPTS);
    expect(result).toEqual({ staged: "callbacks/test/large" });
    const stored = await (await env.IMAGES.get("callbacks/test/large"))?.arrayBuffer();
    expect(stored?.byteLength).toBe(size);
    expect(await digest(stored ?? new ArrayBuffer(0))).toBe(await expectedDigest(size));
  });

  it("is a 413 past the limit, leaving nothing in R2", async () => {
    const err = await stageChunkedBody(env.IMAGES, "callbacks/test/huge", chunked(41 * MiB), OPTS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EaselError);
    expect((err as EaselError).status).toBe(413);
    expect(await env.IMAGES.head("callbacks/test/huge")).toBeNull();
  });
});

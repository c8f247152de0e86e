import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { randomId } from "../../../src/lib/crypto";
import { signedOutputUrl } from "../../../src/storage/links";

/** An output of 100 bytes in R2 and its signed link. */
async function output() {
  const key = `outputs/${randomId("run")}/image_0.png`;
  const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
  await env.IMAGES.put(key, bytes, { httpMetadata: { contentType: "image/png" } });
  return { bytes, url: await signedOutputUrl("http://gateway.test", "test-signing-secret", key) };
}

const get = (url: string, headers: Record<string, string> = {}, method = "GET") => exports.default.fetch(new Request(url, { method, headers }));

describe("an output link", () => {
  it("answers as a file server does: its length, a range as a 206, a matching ETag as a 304", async () => {
    const { bytes, url } = await output();
    const whole = await get(url);
    expect([whole.status, whole.headers.get("content-length"), whole.headers.get("accept-ranges")]).toEqual([200, "100", "bytes"]);
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(bytes);
    expect((await get(url, {}, "HEAD")).headers.get("content-length")).toBe("100");

    const part = await get(url, { range: "bytes=10-19" });
    expect([part.status, part.headers.get("content-range"), part.headers.get("content-length")]).toEqual([206, "bytes 10-19/100", "10"]);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.subarray(10, 20));
    const tail = await get(url, { range: "bytes=-5" });
    expect([tail.status, tail.headers.get("content-range")]).toEqual([206, "bytes 95-99/100"]);
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(bytes.subarray(95));
    const past = await get(url, { range: "bytes=200-" });
    expect([past.status, past.headers.get("content-range")]).toEqual([416, "bytes */100"]);

    const etag = whole.headers.get("etag") ?? "";
    const cached = await get(url, { "if-none-match": etag });
    expect([cached.status, await cached.text()]).toEqual([304, ""]);
    expect((await get(url, { "if-none-match": '"other"' })).status).toBe(200);
  });

  it("weighs preconditions in RFC 9110's order, ignores one that does not parse, and never answers a 500", async () => {
    const { url } = await output();
    const etag = (await get(url, {}, "HEAD")).headers.get("etag") ?? "";
    const status = async (headers: Record<string, string>) => (await get(url, headers)).status;
    for (const bad of ["abc", '"abc', 'W"abc"']) {
      expect(await status({ "if-none-match": bad }), bad).toBe(200);
      expect(await status({ "if-match": bad }), bad).toBe(412);
    }
    expect(await status({ "if-unmodified-since": "garbage" })).toBe(200);
    expect(await status({ "if-match": '"other"', "if-none-match": '"another"' })).toBe(412);
    expect(await status({ "if-none-match": etag, range: "bytes=200-" })).toBe(304);
    expect(await status({ "if-none-match": `W/${etag}` })).toBe(304);
    expect(await status({ "if-match": etag, range: "bytes=0-9" })).toBe(206);
    // A Range for another version of the file: the whole file.
    expect(await status({ "if-range": '"other"', range: "bytes=0-9" })).toBe(200);
  });
});

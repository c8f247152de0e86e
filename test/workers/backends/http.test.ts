import { describe, expect, inject, it } from "vitest";
import { EARLY_RETURN_MIN_BYTES, callBackend, callBackendForImages } from "../../../src/backends/http";
import { Base64Bytes, jsonBody } from "../../../src/lib/json-slots";
import { memoryStore } from "./support";

/** A finished generation's answer from the test backend, and whether its slot was handed back before its body was read. */
async function answered(query: string): Promise<{ early: boolean; images: number }> {
  let early = false;
  const res = await callBackendForImages(
    `${inject("hangingBackendUrl")}/_answer?${query}`,
    { method: "GET" },
    { timeoutMs: 10_000, signal: new AbortController().signal, imagesAt: ["images"], store: memoryStore(), onFinished: () => (early = true) },
  );
  if (!res.ok) throw new Error("the test backend did not answer");
  return { early, images: res.answer.images.length };
}

describe("a synchronous backend's finished answer", () => {
  it("gives its slot back as the headers arrive when the body is long", async () => {
    expect(await answered(`bytes=${EARLY_RETURN_MIN_BYTES}`)).toEqual({ early: true, images: 1 });
  });

  it("gives its slot back as the headers arrive when the body's length is not declared", async () => {
    expect(await answered("bytes=8&chunked=1")).toEqual({ early: true, images: 1 });
  });

  it("keeps its slot until the job settles when the body is short: one release, with the verdict", async () => {
    expect(await answered("bytes=8")).toEqual({ early: false, images: 1 });
  });
});

describe("a request carrying an image", () => {
  const hex = async (text: string) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))), (b) => b.toString(16).padStart(2, "0")).join("");
  const image = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);

  async function echoed(path: string): Promise<{ sent: string; got: { length: number; content_length: string | null; sha256: string } }> {
    const value = { prompt: "p", init_images: [new Base64Bytes(image)] };
    const res = await callBackend(`${inject("hangingBackendUrl")}/_echo/${path}`, { method: "POST", body: jsonBody(value) }, 10_000, new AbortController().signal);
    if (!res.ok || res.status !== 200) throw new Error("the test backend did not answer");
    const sent = JSON.stringify({ prompt: "p", init_images: [btoa(Array.from(image, (b) => String.fromCharCode(b)).join(""))] });
    return { sent, got: JSON.parse(res.body) as { length: number; content_length: string | null; sha256: string } };
  }

  it("arrives whole, with its Content-Length, though its base64 was never one string", async () => {
    const { sent, got } = await echoed(`whole-${crypto.randomUUID()}`);
    expect(got).toEqual({ length: sent.length, content_length: String(sent.length), sha256: await hex(sent) });
  });

  it("goes again whole on another connection when a stale kept-alive one is cut under it", async () => {
    const { sent, got } = await echoed(`stale-${crypto.randomUUID()}-cut`);
    expect(got).toEqual({ length: sent.length, content_length: String(sent.length), sha256: await hex(sent) });
  });
});

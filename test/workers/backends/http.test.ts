import { describe, expect, inject, it } from "vitest";
import { EARLY_RETURN_MIN_BYTES, callBackendForImages } from "../../../src/backends/http";
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

import { describe, expect, it } from "vitest";
import { Base64Bytes, jsonBody, type StreamedBody } from "../../../src/lib/json-slots";

const read = async (body: StreamedBody): Promise<Uint8Array> => new Uint8Array(await new Response(body.open()).arrayBuffer());
const base64 = (bytes: Uint8Array) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));

/** Random bytes, more than one encoding piece long, whose joins must not show. */
function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
  return bytes;
}

describe("a backend's JSON request with images", () => {
  it("is JSON.stringify's text when it has no image", () => {
    const value = { prompt: "é \u0000 \"q\"", n: [1, null, undefined], nested: { skip: undefined, at: new Date(0) } };
    expect(jsonBody(value)).toBe(JSON.stringify(value));
  });

  it("carries each image as base64 in its place, with its exact length, the same each time it is opened (a resend)", async () => {
    const big = randomBytes(200_001);
    const body = jsonBody({ init_images: [new Base64Bytes(big)], prompt: "a ✓", input: { images: [{ name: "x.png", image: new Base64Bytes(new Uint8Array([1, 2, 3])) }] } });
    if (typeof body === "string") throw new Error("a body with images came back as text");
    const first = await read(body);
    expect(first.byteLength).toBe(body.length);
    expect(JSON.parse(new TextDecoder().decode(first))).toEqual({ init_images: [base64(big)], prompt: "a ✓", input: { images: [{ name: "x.png", image: "AQID" }] } });
    expect(await read(body)).toEqual(first);
  });

  it("expands only the images it was given, never a string that looks like one", async () => {
    const body = jsonBody({ prompt: '""', track: "\u0000slot:0", image: new Base64Bytes(new Uint8Array([9])) });
    if (typeof body === "string") throw new Error("a body with images came back as text");
    expect(JSON.parse(new TextDecoder().decode(await read(body)))).toEqual({ prompt: '""', track: "\u0000slot:0", image: "CQ==" });
  });
});

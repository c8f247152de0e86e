import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { SlottedBody } from "../../../src/lib/json-slots";
import { OutputImage, slottedStream, withOutputSlots } from "../../../src/webhooks/body-slots";

/** The body as a receiver gets it, checked against the length it is sent with. */
async function sent(body: SlottedBody, keys: string[]): Promise<string> {
  const streamed = await slottedStream(env.IMAGES, body, keys);
  const bytes = new Uint8Array(await new Response(streamed.open()).arrayBuffer());
  expect(bytes.byteLength).toBe(streamed.length);
  return new TextDecoder().decode(bytes);
}

describe("webhook bodies with images", () => {
  it("serializes exactly as JSON.stringify does when there are no images", () => {
    const value = { a: 1, b: [true, null, undefined, "x\u0000y"], c: { d: undefined, e: new Date(0) }, f: () => 1, g: "\"quoted\"" };
    const body = withOutputSlots(value);
    expect(body.text).toBe(JSON.stringify(value));
    expect(body.slots).toEqual([]);
  });

  it("leaves each image out of the stored text and streams it from R2 at delivery, with its exact length", async () => {
    await env.IMAGES.put("slots-test/a.png", new Uint8Array([1, 2, 3]));
    await env.IMAGES.put("slots-test/b.png", new Uint8Array([4, 5, 6, 7]));
    // Large enough to be encoded in several chunks, whose joins must not show.
    const big = new Uint8Array(200_001);
    for (let at = 0; at < big.length; at += 65536) crypto.getRandomValues(big.subarray(at, at + 65536));
    await env.IMAGES.put("slots-test/big.png", big);
    const body = withOutputSlots({ result: [new OutputImage(0), new OutputImage(1)], prompt: "é ✓", track_id: "t", big: new OutputImage(2) });
    expect(body.text).toBe('{"result":["",""],"prompt":"é ✓","track_id":"t","big":""}');
    const json = JSON.parse(await sent(body, ["slots-test/a.png", "slots-test/b.png", "slots-test/big.png"])) as Record<string, unknown>;
    expect(json).toMatchObject({ result: ["AQID", "BAUGBw=="], prompt: "é ✓", track_id: "t" });
    expect(json.big).toBe(btoa(Array.from(big, (b) => String.fromCharCode(b)).join("")));
  });

  it("never expands anything a client wrote, whatever it looks like", async () => {
    await env.IMAGES.put("inputs/run_victim/init", new Uint8Array([9, 9, 9]));
    const hostile = "\u0000easel-r2:inputs/run_victim/init";
    const body = withOutputSlots({ track_id: hostile, prompt: `"${hostile}"`, result: [new OutputImage(0)] });
    const got = JSON.parse(await sent(body, [])) as { track_id: string; prompt: string; result: string[] };
    expect(got.track_id).toBe(hostile);
    expect(got.prompt).toBe(`"${hostile}"`);
    // An output index the job does not have is empty, never another object.
    expect(got.result).toEqual([""]);
  });
});

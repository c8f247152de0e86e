import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { fillSlots, OutputImage, serializeWithSlots } from "../../../src/webhooks/body-slots";

describe("webhook bodies with images", () => {
  it("serializes exactly as JSON.stringify does when there are no images", () => {
    const value = { a: 1, b: [true, null, undefined, "x\u0000y"], c: { d: undefined, e: new Date(0) }, f: () => 1, g: "\"quoted\"" };
    const body = serializeWithSlots(value);
    expect(body.text).toBe(JSON.stringify(value));
    expect(body.slots).toEqual([]);
  });

  it("leaves each image out of the stored text and fills it from R2 at delivery", async () => {
    await env.IMAGES.put("slots-test/a.png", new Uint8Array([1, 2, 3]));
    await env.IMAGES.put("slots-test/b.png", new Uint8Array([4, 5, 6, 7]));
    const body = serializeWithSlots({ result: [new OutputImage(0), new OutputImage(1)], track_id: "t" });
    expect(body.text).toBe('{"result":["",""],"track_id":"t"}');
    const sent = await fillSlots(env.IMAGES, body, ["slots-test/a.png", "slots-test/b.png"]);
    expect(JSON.parse(sent)).toEqual({ result: ["AQID", "BAUGBw=="], track_id: "t" });
  });

  it("never expands anything a client wrote, whatever it looks like", async () => {
    await env.IMAGES.put("inputs/run_victim/init", new Uint8Array([9, 9, 9]));
    const hostile = "\u0000easel-r2:inputs/run_victim/init";
    const body = serializeWithSlots({ track_id: hostile, prompt: `"${hostile}"`, result: [new OutputImage(0)] });
    const sent = JSON.parse(await fillSlots(env.IMAGES, body, [])) as { track_id: string; prompt: string; result: string[] };
    expect(sent.track_id).toBe(hostile);
    expect(sent.prompt).toBe(`"${hostile}"`);
    // An output index the job does not have is empty, never another object.
    expect(sent.result).toEqual([""]);
  });
});

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { withFrames } from "../../../durable-objects/stored-frames";

const prefix = new Uint8Array([0, 0, 0, 1, 0, 0, 0, 2]);
const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe("a feed's binary frames", () => {
  it("carry each stored output after its header, in the messages' order; text stays as it is", async () => {
    await env.IMAGES.put("frames/a.png", bytes(3, 7));
    await env.IMAGES.put("frames/b.png", bytes(2, 9));
    const out = await withFrames(env.IMAGES, ["frames/a.png", "frames/b.png"], ["one", { prefix, output: 1 }, "two", { prefix, output: 0 }]);
    expect(out.map((m) => (typeof m === "string" ? m : [...m]))).toEqual(["one", [...prefix, 9, 9], "two", [...prefix, 7, 7, 7]]);
  });

  it("leave out an output that is gone or past the notice's byte budget, with its lead, never the messages around it", async () => {
    await env.IMAGES.put("frames/big.png", bytes(20, 1));
    await env.IMAGES.put("frames/small.png", bytes(4, 2));
    const messages = ["start", { prefix, output: 0, lead: "gone" }, { prefix, output: 1, lead: "first" }, { prefix, output: 2, lead: "big" }, { prefix, output: 1 }, "end"];
    const out = await withFrames(env.IMAGES, ["frames/missing.png", "frames/small.png", "frames/big.png"], messages, 2 * (prefix.length + 4));
    expect(out.map((m) => (typeof m === "string" ? m : m.length))).toEqual(["start", "first", 12, 12, "end"]);
  });
});

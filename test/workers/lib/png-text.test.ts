import { describe, expect, it } from "vitest";
import { readPngText } from "../../../src/lib/png-text";

const enc = new TextEncoder();
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** A PNG chunk (the reader does not check CRCs, so they are left zero). */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  new DataView(out.buffer).setUint32(0, data.length);
  out.set(latin1(type), 4);
  out.set(data, 8);
  return out;
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
};

const png = (...chunks: Uint8Array[]) => concat(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", new Uint8Array(13)), ...chunks, chunk("IEND", new Uint8Array()));

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await new Response(new Blob([data]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer());
}

describe("PNG text chunks", () => {
  it("reads tEXt (Latin-1), iTXt (UTF-8, plain or compressed) and zTXt, the first of a keyword winning", async () => {
    const bytes = png(
      chunk("tEXt", latin1("parameters\0a café\nSteps: 20")),
      chunk("tEXt", latin1("parameters\0a later one")),
      chunk("iTXt", concat(latin1("Title\0\0\0\0\0"), enc.encode("猫の魔法使い"))),
      chunk("iTXt", concat(latin1("Comment\0\x01\0en\0\0"), await deflate(enc.encode("über")))),
      chunk("zTXt", concat(latin1("Software\0\0"), await deflate(latin1("paint")))),
    );
    expect(await readPngText(bytes)).toEqual({ parameters: "a café\nSteps: 20", Title: "猫の魔法使い", Comment: "über", Software: "paint" });
  });

  it("keeps a keyword such as __proto__ as data, and answers nothing for what is not a PNG", async () => {
    const text = await readPngText(png(chunk("tEXt", latin1("__proto__\0x"))));
    expect(Object.keys(text)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(text)).toBe(Object.prototype);
    expect(await readPngText(enc.encode("GIF89a not a png"))).toEqual({});
    // A chunk claiming more bytes than there are ends the walk.
    const cut = png(chunk("tEXt", latin1("a\0b"))).slice(0, 40);
    expect(await readPngText(cut)).toEqual({});
  });
});

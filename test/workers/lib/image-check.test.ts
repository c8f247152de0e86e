import { describe, expect, it } from "vitest";
import { base64ToBytes } from "../../../src/lib/base64";
import { MAX_IMAGE_PIXELS, checkImage } from "../../../src/lib/image-check";

const PNG_1X1 = base64ToBytes("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==") ?? new Uint8Array();

/** The PNG with its IHDR saying another size (its CRC left as it was: only the structure is walked). */
function pngSized(width: number, height: number): Uint8Array {
  const b = PNG_1X1.slice();
  new DataView(b.buffer).setUint32(16, width);
  new DataView(b.buffer).setUint32(20, height);
  return b;
}

const bytes = (...parts: number[][]) => new Uint8Array(parts.flat());
/** SOI, a baseline frame of 64x48, a scan header, coded data and (unless cut) EOI. */
const jpeg = (ended = true) =>
  bytes([0xff, 0xd8], [0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x30, 0x00, 0x40, 0x01, 0x01, 0x11, 0x00], [0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00], [0x12, 0x34, 0x56], ended ? [0xff, 0xd9] : []);
/** RIFF/WEBP with one VP8L chunk of 16x16, its sizes as `riffSize` and `chunkSize` say. */
function webp(riffSize: number, chunkSize: number): Uint8Array {
  const b = new Uint8Array(40);
  b.set([0x52, 0x49, 0x46, 0x46], 0);
  new DataView(b.buffer).setUint32(4, riffSize, true);
  b.set([0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38, 0x4c], 8);
  new DataView(b.buffer).setUint32(16, chunkSize, true);
  b[20] = 0x2f;
  new DataView(b.buffer).setUint32(21, 15 | (15 << 14), true);
  return b;
}

describe("checkImage", () => {
  it("takes whole PNG, JPEG and WebP images, with their sizes", () => {
    expect(checkImage(PNG_1X1)).toEqual({ ok: true, image: { contentType: "image/png", width: 1, height: 1 } });
    expect(checkImage(jpeg())).toMatchObject({ ok: true, image: { contentType: "image/jpeg", width: 64, height: 48 } });
    expect(checkImage(webp(32, 20))).toMatchObject({ ok: true, image: { contentType: "image/webp", width: 16, height: 16 } });
  });

  it("refuses a header alone, a header before garbage, and an image cut short", () => {
    expect(checkImage(PNG_1X1.slice(0, 33))).toMatchObject({ ok: false, code: "invalid_image" });
    const garbage = new Uint8Array(200).fill(0x41);
    garbage.set(PNG_1X1.slice(0, 33));
    expect(checkImage(garbage)).toMatchObject({ ok: false, code: "invalid_image" });
    expect(checkImage(PNG_1X1.slice(0, PNG_1X1.length - 12))).toMatchObject({ ok: false, code: "invalid_image" });
    expect(checkImage(jpeg(false))).toMatchObject({ ok: false, code: "invalid_image" });
    expect(checkImage(webp(4096, 20))).toMatchObject({ ok: false, code: "invalid_image" });
    expect(checkImage(webp(32, 4096))).toMatchObject({ ok: false, code: "invalid_image" });
  });

  it("refuses more pixels than Pillow decodes without calling it a decompression bomb", () => {
    expect(checkImage(pngSized(60_000, 60_000))).toMatchObject({ ok: false, code: "image_too_large", message: expect.stringContaining("60000x60000") });
    expect(checkImage(pngSized(9_000, 9_000))).toMatchObject({ ok: true });
    expect(9_000 * 9_000).toBeLessThan(MAX_IMAGE_PIXELS);
  });
});

/**
 * Whether an input image is one a backend can decode: its type and size read from its header
 * (image-sniff.ts), its structure walked to the end (a header alone, or a header before garbage, is
 * no image), and its pixels within Pillow's own limit (`Image.MAX_IMAGE_PIXELS`, which A1111 and
 * ComfyUI decode with): a few hundred bytes of PNG can declare 60000x60000.
 */
import { sniffImage, type SniffedImage } from "./image-sniff";

/** Pillow's decompression-bomb threshold: past it Pillow warns, past twice it refuses. */
export const MAX_IMAGE_PIXELS = 89_478_485;

export type ImageCheck = { ok: true; image: SniffedImage } | { ok: false; code: "invalid_image" | "image_too_large"; message: string };

const u32 = (b: Uint8Array, at: number) => (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
const u32le = (b: Uint8Array, at: number) => ((b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16) | ((b[at + 3] ?? 0) << 24)) >>> 0;
const tag = (b: Uint8Array, at: number) => String.fromCharCode(b[at] ?? 0, b[at + 1] ?? 0, b[at + 2] ?? 0, b[at + 3] ?? 0);

/** PNG: chunk after chunk (length, type, data, CRC) from IHDR to IEND, with image data between. */
function pngComplete(b: Uint8Array): boolean {
  let at = 8;
  let data = false;
  while (at + 12 <= b.length) {
    const length = u32(b, at);
    const type = tag(b, at + 4);
    if (at + 12 + length > b.length) return false;
    if (type === "IDAT" && length > 0) data = true;
    if (type === "IEND") return data;
    at += 12 + length;
  }
  return false;
}

/** JPEG: segments to the start of scan, then coded data closed by the end-of-image marker. */
function jpegComplete(b: Uint8Array): boolean {
  let at = 2;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) return false;
    const marker = b[at + 1] ?? 0;
    if (marker === 0xff) {
      at++;
      continue;
    }
    const length = ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0);
    if (length < 2 || at + 2 + length > b.length) return false;
    // Start of scan: its coded data follows; the image ends with FF D9 after it.
    if (marker === 0xda) {
      for (let end = b.length - 2; end > at + 2 + length; end--) if (b[end] === 0xff && b[end + 1] === 0xd9) return true;
      return false;
    }
    at += 2 + length;
  }
  return false;
}

/** WebP: the RIFF container as long as it says, its first chunk a bitstream within it. */
function webpComplete(b: Uint8Array): boolean {
  const riff = u32le(b, 4) + 8;
  if (riff > b.length || riff < 20) return false;
  const first = u32le(b, 16);
  return first > 0 && 20 + first <= riff;
}

export function checkImage(bytes: Uint8Array): ImageCheck {
  const image = sniffImage(bytes);
  if (!image) return { ok: false, code: "invalid_image", message: "not a PNG, JPEG or WebP image" };
  if (image.width * image.height > MAX_IMAGE_PIXELS) {
    return { ok: false, code: "image_too_large", message: `${image.width}x${image.height} is over ${MAX_IMAGE_PIXELS} pixels` };
  }
  const complete = image.contentType === "image/png" ? pngComplete(bytes) : image.contentType === "image/jpeg" ? jpegComplete(bytes) : webpComplete(bytes);
  if (!complete) return { ok: false, code: "invalid_image", message: `not a whole ${image.contentType.slice(6).toUpperCase()} image (cut short, or its header alone)` };
  return { ok: true, image };
}

import { base64ToBytes } from "./base64";
export interface SniffedImage {
  contentType: "image/png" | "image/jpeg" | "image/webp";
  width: number;
  height: number;
}

const startsWith = (b: Uint8Array, sig: number[], at = 0) => b.length >= at + sig.length && sig.every((v, i) => b[at + i] === v);

function png(b: Uint8Array, v: DataView): SniffedImage | null {
  if (!startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) || b.length < 24 || !startsWith(b, [0x49, 0x48, 0x44, 0x52], 12)) return null;
  return { contentType: "image/png", width: v.getUint32(16), height: v.getUint32(20) };
}

/** Walks JPEG segments to the first start-of-frame marker (bounded by the data's length). */
function jpeg(b: Uint8Array, v: DataView): SniffedImage | null {
  if (!startsWith(b, [0xff, 0xd8, 0xff])) return null;
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1] ?? 0;
    if (marker === 0xff) {
      i++;
      continue;
    }
    const len = v.getUint16(i + 2);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) return { contentType: "image/jpeg", width: v.getUint16(i + 7), height: v.getUint16(i + 5) };
    if (len < 2) return null;
    i += 2 + len;
  }
  return null;
}

function webp(b: Uint8Array, v: DataView): SniffedImage | null {
  if (!startsWith(b, [0x52, 0x49, 0x46, 0x46]) || !startsWith(b, [0x57, 0x45, 0x42, 0x50], 8) || b.length < 30) return null;
  const chunk = String.fromCharCode(b[12] ?? 0, b[13] ?? 0, b[14] ?? 0, b[15] ?? 0);
  if (chunk === "VP8 " && startsWith(b, [0x9d, 0x01, 0x2a], 23)) {
    return { contentType: "image/webp", width: v.getUint16(26, true) & 0x3fff, height: v.getUint16(28, true) & 0x3fff };
  }
  if (chunk === "VP8L" && b[20] === 0x2f) {
    const bits = v.getUint32(21, true);
    return { contentType: "image/webp", width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === "VP8X") {
    const w = 1 + ((b[24] ?? 0) | ((b[25] ?? 0) << 8) | ((b[26] ?? 0) << 16));
    const h = 1 + ((b[27] ?? 0) | ((b[28] ?? 0) << 8) | ((b[29] ?? 0) << 16));
    return { contentType: "image/webp", width: w, height: h };
  }
  return null;
}

/** What an image really is, by its bytes rather than by what anyone says it is. */
export function sniffImage(bytes: Uint8Array): SniffedImage | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found = png(bytes, view) ?? jpeg(bytes, view) ?? webp(bytes, view);
  return found && found.width > 0 && found.height > 0 ? found : null;
}

/** PNG, JPEG and WebP's first bytes, as `sniffImage` tells them, read from a string's first 12 bytes. */
const IMAGE_MAGIC = /^(\x89PNG\r\n\x1a\n|\xff\xd8\xff|RIFF[\s\S]{4}WEBP)/;

/**
 * Whether a string is raw base64 of an image: its first few characters decoded say PNG, JPEG or
 * WebP. A string a client sent as text (a name, a path, a prompt) never does.
 */
export function base64StartsAnImage(s: string): boolean {
  if (s.length < 64) return false;
  const head = base64ToBytes(s.slice(0, 16));
  return head !== null && IMAGE_MAGIC.test(String.fromCharCode(...head));
}

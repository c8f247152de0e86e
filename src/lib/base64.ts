import { concatBytes } from "./streams";

const CHUNK = 0x8000;

/** Standard base64 of bytes; chunked so a 10 MiB image does not blow the argument limit. */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHUNK) binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  return btoa(binary);
}

/** Characters decoded at a time: a 13 MB string is never copied whole (a replace or a pad would). */
const DECODE_SLICE = 64 * 1024;

/** Decodes standard or url-safe base64 (padding optional, whitespace ignored); null if it is not base64. */
export function base64ToBytes(input: string): Uint8Array | null {
  // The decoder takes a data-URI prefix; a bare string here never has one.
  if (input.trimStart().startsWith("data:")) return null;
  const decoder = new Base64Decoder();
  for (let at = 0; at < input.length; at += DECODE_SLICE) decoder.write(input.slice(at, at + DECODE_SLICE));
  const chunks = decoder.end();
  return chunks && concatBytes(chunks, decoder.length);
}

export const base64UrlEncode = (bytes: Uint8Array): string => bytesToBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** The bytes of a binary string (what atob answers), one byte a character. */
function binaryToBytes(binary: string): Uint8Array {
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Longest `data:<type>;base64,` prefix accepted before an image's base64. */
const MAX_DATA_URI_PREFIX = 256;

/**
 * Decodes base64 that arrives in pieces (a backend's image read off the wire), with what
 * `base64ToBytes` accepts: a data-URI prefix, the url-safe alphabet, whitespace, optional padding.
 * Only the last incomplete quantum is ever carried over; the bytes come out in chunks.
 */
export class Base64Decoder {
  readonly chunks: Uint8Array[] = [];
  length = 0;
  private carry = "";
  private started = false;
  private padded = false;
  private bad = false;

  write(piece: string): void {
    if (this.bad) return;
    if (this.started) return this.feed(piece);
    const pending = this.carry + piece;
    // Too short yet to tell a data-URI prefix from base64 that starts with "da".
    if (pending.length < 5 && "data:".startsWith(pending)) {
      this.carry = pending;
      return;
    }
    let s = pending;
    if (pending.startsWith("data:")) {
      const comma = pending.indexOf(",");
      if (comma < 0) {
        if (pending.length > MAX_DATA_URI_PREFIX) this.bad = true;
        else this.carry = pending;
        return;
      }
      s = pending.slice(comma + 1);
    }
    this.carry = "";
    this.started = true;
    this.feed(s);
  }

  /** All the bytes, or null when it was not base64. */
  end(): Uint8Array[] | null {
    if (!this.started) {
      const pending = this.carry;
      this.carry = "";
      this.started = true;
      if (pending.startsWith("data:")) this.bad = true;
      else this.feed(pending);
    }
    if (this.bad || this.carry.length % 4 === 1) return null;
    if (this.carry) this.push(atob(this.carry.padEnd(Math.ceil(this.carry.length / 4) * 4, "=")));
    this.carry = "";
    return this.chunks;
  }

  private feed(piece: string): void {
    if (this.bad) return;
    let s = piece.replace(/\s+/g, "").replace(/-/g, "+").replace(/_/g, "/");
    const pad = s.indexOf("=");
    // Padding ends the data: after it, only more padding.
    if ((this.padded && !/^=*$/.test(s)) || (pad >= 0 && !/^=*$/.test(s.slice(pad)))) {
      this.bad = true;
      return;
    }
    if (pad >= 0) this.padded = true;
    if (this.padded) s = pad >= 0 ? s.slice(0, pad) : "";
    if (!/^[A-Za-z0-9+/]*$/.test(s)) {
      this.bad = true;
      return;
    }
    const all = this.carry + s;
    const whole = all.length - (all.length % 4);
    this.carry = all.slice(whole);
    if (whole) this.push(atob(all.slice(0, whole)));
  }

  private push(binary: string): void {
    const bytes = binaryToBytes(binary);
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
}

/** 3 × 16 KiB: a multiple of 3, so chunks encode without padding in between. */
const ENCODE_CHUNK = 3 * 16 * 1024;

const ascii = new TextEncoder();

/** The base64 text of `bytes` as its characters' bytes (ASCII), piece by piece: never one string of it all. */
export function* base64Pieces(bytes: Uint8Array): Generator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += ENCODE_CHUNK) yield ascii.encode(bytesToBase64(bytes.subarray(i, i + ENCODE_CHUNK)));
}

/** The base64 text of a byte stream, as a stream of its characters' bytes (ASCII), chunk by chunk. */
export function base64EncodeStream(): TransformStream<Uint8Array, Uint8Array> {
  let carry = new Uint8Array(0);
  return new TransformStream({
    transform(chunk, controller) {
      const all = carry.length ? concat(carry, chunk) : chunk;
      const whole = all.length - (all.length % 3);
      for (const piece of base64Pieces(all.subarray(0, whole))) controller.enqueue(piece);
      carry = all.slice(whole);
    },
    flush(controller) {
      for (const piece of base64Pieces(carry)) controller.enqueue(piece);
    },
  });
}

/** The length of the base64 of `bytes` bytes, padding included. */
export const base64Length = (bytes: number): number => Math.ceil(bytes / 3) * 4;

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

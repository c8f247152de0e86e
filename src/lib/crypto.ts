import { chunksOf, streamOf } from "./streams";

const encoder = new TextEncoder();
const asBytes = (v: string | Uint8Array): Uint8Array => (typeof v === "string" ? encoder.encode(v) : v);

/**
 * Imported HMAC keys, per configured string: a key comes from configuration and is used on every
 * request (each GET checks its run id) or delivery (each tenant's webhook secrets), so it is
 * imported once. Bounded by configuration's size, a few per tenant; past the bound it starts over.
 */
const importedKeys = new Map<string, Promise<CryptoKey>>();
const IMPORTED_KEYS_MAX = 512;

function importHmacKey(key: Uint8Array | string, cacheAs?: string): Promise<CryptoKey> {
  const load = () => crypto.subtle.importKey("raw", asBytes(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  // A string is its own name; bytes are cached only under the configured string they came from.
  const name = cacheAs !== undefined ? `from:${cacheAs}` : typeof key === "string" ? `raw:${key}` : undefined;
  if (name === undefined) return load();
  let found = importedKeys.get(name);
  if (!found) {
    if (importedKeys.size >= IMPORTED_KEYS_MAX) importedKeys.clear();
    found = load();
    importedKeys.set(name, found);
  }
  return found;
}

/** `cacheAs`: the configured string `key` was decoded from, so the key is imported once. */
export async function hmacSha256(key: Uint8Array | string, data: Uint8Array | string, cacheAs?: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", await importHmacKey(key, cacheAs), asBytes(data)));
}

export const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", asBytes(data))));
}

/** Constant-time equality: how far two values agree never shows in the time taken. */
export function timingSafeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  const x = asBytes(a);
  const y = asBytes(b);
  // Unequal lengths still cost a full comparison, of the first value against itself.
  if (x.byteLength !== y.byteLength) return !crypto.subtle.timingSafeEqual(x, x);
  return crypto.subtle.timingSafeEqual(x, y);
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** Lower-case RFC 4648 base32 without padding: ids stay case-folding safe and URL-clean. */
export function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * The bytes of a `base32` string, or undefined unless the string is exactly what `base32` makes of
 * them (unused trailing bits zero): one value, one spelling, so an id has no aliases.
 */
export function base32Decode(text: string): Uint8Array | undefined {
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let n = 0;
  for (const ch of text) {
    const digit = BASE32.indexOf(ch);
    if (digit < 0) return undefined;
    value = ((value << 5) | digit) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[n++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  if (bits >= 5 || (value & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

/** `<prefix>_` + 26 base32 characters: 128 random bits (the contract asks for at least 122). */
export function randomId(prefix: string): string {
  return `${prefix}_${base32(crypto.getRandomValues(new Uint8Array(16)))}`;
}

/** JSON with object keys sorted at every depth: two bodies equal as JSON serialize the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

const HMAC_BLOCK = 64;

/**
 * HMAC-SHA256 (RFC 2104) under each key of data read once as a stream: the inner hashes run
 * through workerd's DigestStream, so a body of any size is signed without being held.
 */
export async function hmacSha256Stream(keys: (Uint8Array | string)[], data: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const blocks = await Promise.all(
    keys.map(async (key) => {
      const raw = asBytes(key);
      const k = raw.byteLength > HMAC_BLOCK ? new Uint8Array(await crypto.subtle.digest("SHA-256", raw)) : raw;
      const block = new Uint8Array(HMAC_BLOCK);
      block.set(k);
      return block;
    }),
  );
  const xor = (block: Uint8Array, v: number) => block.map((b) => b ^ v);
  const inner = blocks.map(() => new crypto.DigestStream("SHA-256"));
  const writers = inner.map((d) => d.getWriter());
  await Promise.all(writers.map((w, i) => w.write(xor(blocks[i] ?? new Uint8Array(HMAC_BLOCK), 0x36))));
  const reader = data.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    await Promise.all(writers.map((w) => w.write(value)));
  }
  await Promise.all(writers.map((w) => w.close()));
  return Promise.all(
    inner.map(async (d, i) => {
      const innerHash = new Uint8Array(await d.digest);
      const outer = new Uint8Array(HMAC_BLOCK + innerHash.byteLength);
      outer.set(xor(blocks[i] ?? new Uint8Array(HMAC_BLOCK), 0x5c));
      outer.set(innerHash, HMAC_BLOCK);
      return new Uint8Array(await crypto.subtle.digest("SHA-256", outer));
    }),
  );
}

/** A stream of `prefix` (text) and then `rest`: what a signature covers ("{id}.{timestamp}.{body}"). */
export function prefixedStream(prefix: string, rest: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  return streamOf(
    (async function* () {
      yield encoder.encode(prefix);
      yield* chunksOf(rest);
    })(),
  );
}

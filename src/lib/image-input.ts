import { EaselError } from "../errors";
import { base64ToBytes } from "./base64";
import { checkImage } from "./image-check";
import { checkOutboundUrl } from "./url-guard";
import { readAtMost } from "./streams";
import { withDeadline } from "./deadline";

const MAX_REDIRECTS = 3;

export interface ImageInputOptions {
  /** The request field the image came in, named in every error. */
  field: string;
  allowPrivate: boolean;
  maxBytes: number;
  timeoutMs?: number;
  fetcher?: typeof fetch;
  /** URLs the gateway serves itself, read without the network: their bytes, null for one it refuses, undefined for any other URL. */
  local?: (url: string) => Promise<Uint8Array | null | undefined>;
}

export interface ImageInput {
  bytes: Uint8Array;
  contentType: string;
  width: number;
  height: number;
}

const fieldError = (code: string, field: string, message: string) => new EaselError(422, code, `${field}: ${message}`, [{ path: field, message }]);

/** Reads a body up to `maxBytes`, stopping as soon as it is over: a huge body is never buffered. */
async function readCapped(res: Response, opts: ImageInputOptions): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > opts.maxBytes) throw fieldError("image_too_large", opts.field, `image is over ${opts.maxBytes} bytes`);
  if (!res.body) return new Uint8Array();
  const reader = res.body.getReader();
  const bytes = await readAtMost(reader, opts.maxBytes);
  if (bytes) return bytes;
  await reader.cancel().catch(() => undefined);
  throw fieldError("image_too_large", opts.field, `image is over ${opts.maxBytes} bytes`);
}

/** Fetches an image URL, re-checking every redirect against the SSRF guard. */
async function fetchImage(raw: string, opts: ImageInputOptions): Promise<Uint8Array> {
  return withDeadline(opts.timeoutMs ?? 15_000, (signal) => fetchImageWithin(raw, opts, signal));
}

async function fetchImageWithin(raw: string, opts: ImageInputOptions, signal: AbortSignal): Promise<Uint8Array> {
  const fetcher = opts.fetcher ?? fetch;
  let url = raw;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const checked = checkOutboundUrl(url, { allowPrivate: opts.allowPrivate });
    if (!checked.ok) throw fieldError("invalid_url", opts.field, checked.reason);
    let res: Response;
    try {
      res = await fetcher(checked.url.toString(), { redirect: "manual", signal });
    } catch {
      throw fieldError("image_fetch_failed", opts.field, signal.aborted ? "the image URL did not answer in time" : "the image URL could not be reached");
    }
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get("location");
      await res.body?.cancel().catch(() => undefined);
      if (!location) throw fieldError("image_fetch_failed", opts.field, `the image URL redirected (${res.status}) without a Location`);
      url = new URL(location, checked.url).toString();
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw fieldError("image_fetch_failed", opts.field, `the image URL answered ${res.status}`);
    }
    return readCapped(res, opts);
  }
  throw fieldError("image_fetch_failed", opts.field, `more than ${MAX_REDIRECTS} redirects`);
}

/** An image given as an http(s) URL, a `data:` URI or raw base64, checked to be a real PNG, JPEG or WebP (image-check.ts). */
export async function readImageInput(value: string, opts: ImageInputOptions): Promise<ImageInput> {
  const trimmed = value.trim();
  let bytes: Uint8Array;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    const own = await opts.local?.(trimmed);
    if (own === null) throw fieldError("image_fetch_failed", opts.field, "the output link is invalid or has expired");
    if (own && own.byteLength > opts.maxBytes) throw fieldError("image_too_large", opts.field, `image is over ${opts.maxBytes} bytes`);
    bytes = own ?? (await fetchImage(trimmed, opts));
  } else {
    const data = trimmed.match(/^data:[^,]*?;base64,(.*)$/is);
    // Size is checked on the encoded length first, so a huge string is never decoded.
    const encoded = data ? (data[1] ?? "") : trimmed;
    if (Math.floor((encoded.length * 3) / 4) > opts.maxBytes + 2) throw fieldError("image_too_large", opts.field, `image is over ${opts.maxBytes} bytes`);
    const decoded = base64ToBytes(encoded);
    if (!decoded) throw fieldError("invalid_image", opts.field, "not an http(s) URL, a data URI or base64");
    if (decoded.byteLength > opts.maxBytes) throw fieldError("image_too_large", opts.field, `image is over ${opts.maxBytes} bytes`);
    bytes = decoded;
  }
  const checked = checkImage(bytes);
  if (!checked.ok) throw fieldError(checked.code, opts.field, checked.message);
  return { bytes, ...checked.image };
}

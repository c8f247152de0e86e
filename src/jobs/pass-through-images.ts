/**
 * Images inside an A1111 payload's pass-through fields (`a1111_extra`): img2img's `mask`, and the
 * arguments of `alwayson_scripts` (ControlNet units' `image`, `mask`, `{image, mask}`...). A1111
 * fetches any http(s) string there itself (modules/api/api.py `decode_base64_to_image`, redirects
 * followed) and decodes base64 with no limit but Pillow's, so the gateway reads each one as it
 * reads an init image (URL rules, size, time, a real image within the pixel limit) before the
 * payload reaches a backend: a URL goes on as the base64 of its image.
 */
import { EaselError } from "../errors";
import { bytesToBase64 } from "../lib/base64";
import { readImageInput, type ImageInputOptions } from "../lib/image-input";
import { base64StartsAnImage } from "../lib/image-sniff";

/** The pass-through fields that carry images: A1111's own `mask`, and the scripts' arguments. */
const IMAGE_FIELDS = ["mask", "alwayson_scripts"] as const;

/** Keys whose string is an image wherever they stand (ControlNet's units and their `{image, mask}` form). */
const IMAGE_KEYS: ReadonlySet<string> = new Set(["image", "input_image", "mask", "mask_image", "image_path"]);

/** Scripts' arguments are a few levels deep (ControlNet: `controlnet.args.0.image.mask`); deeper is refused, never left unread. */
export const MAX_IMAGE_DEPTH = 16;

/** A request names a few images (a mask, ControlNet units, an IP-Adapter's references): more than this is a 422. */
export const MAX_PASS_THROUGH_IMAGES = 64;

/** All of a request's such images together, decoded: no more than a request body may carry (15 MiB). */
export const MAX_PASS_THROUGH_IMAGE_BYTES = 15 * 1024 * 1024;


/**
 * A string A1111 (or an extension through its helper) would fetch, or an image data URI it would
 * decode, wherever it stands. A URL is read even under a name that says nothing: one the gateway
 * could not read as an image may be one only the GPU's own network reaches. Other `data:` text is text.
 */
const REFERENCE = /^(https?:\/\/|data:image\/)/i;

export interface PassThroughImageOptions extends Pick<ImageInputOptions, "allowPrivate" | "maxBytes" | "local" | "fetcher"> {
  /** Where the pass-through fields sit in the client's body (`input.` for RunPod), before each field named. */
  under: string;
  /** All the images together, decoded: a URL may not bring more than a request body could hold. */
  maxTotalBytes: number;
}

/** An image found, with where it came from and how to put its replacement in the copy. */
interface Found {
  field: string;
  value: string;
  set: (s: string) => void;
}

const refusal = (field: string, message: string) => new EaselError(422, "validation_failed", `${field}: ${message}`, [{ path: field, message }]);


/**
 * Copies the containers under `value` (never its strings) and lists the images in it: a string
 * under an image key, an http(s) URL or data URI anywhere, or raw base64 that starts as an image.
 */
function collect(value: unknown, path: string[], key: string | undefined, found: Found[], set: (v: string) => void, under: string): unknown {
  const field = `${under}${path.join(".")}`;
  if (typeof value === "string") {
    const s = value.trim();
    if (s && ((key !== undefined && IMAGE_KEYS.has(key)) || REFERENCE.test(s) || base64StartsAnImage(s))) found.push({ field, value: s, set });
    return value;
  }
  if (value === null || typeof value !== "object") return value;
  if (path.length > MAX_IMAGE_DEPTH) throw refusal(field, `nested deeper than ${MAX_IMAGE_DEPTH} levels`);
  if (Array.isArray(value)) {
    const copy: unknown[] = [...value];
    copy.forEach((item, i) => (copy[i] = collect(item, [...path, String(i)], undefined, found, (v) => (copy[i] = v), under)));
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [k, item] of Object.entries(copy)) copy[k] = collect(item, [...path, k], k, found, (v) => (copy[k] = v), under);
  return copy;
}

/**
 * `extra` with each image in its image fields read and checked; a URL is replaced by the base64 of
 * its image and a data URI by its base64, raw base64 goes as sent. Undefined in, undefined out; the
 * same object when it holds no image. A bad one is a 422 naming its field (`mask`,
 * `alwayson_scripts.controlnet.args.0.image`).
 */
export async function readPassThroughImages(extra: Record<string, unknown> | undefined, opts: PassThroughImageOptions): Promise<Record<string, unknown> | undefined> {
  if (!extra || !IMAGE_FIELDS.some((f) => extra[f] !== undefined && extra[f] !== null)) return extra;
  const found: Found[] = [];
  const copy = { ...extra };
  for (const name of IMAGE_FIELDS) if (name in extra) copy[name] = collect(extra[name], [name], name, found, (v) => (copy[name] = v), opts.under);
  if (!found.length) return extra;
  if (found.length > MAX_PASS_THROUGH_IMAGES) throw refusal(`${opts.under}alwayson_scripts`, `at most ${MAX_PASS_THROUGH_IMAGES} images in a request`);
  let total = 0;
  // One at a time: only one image's bytes are held at once, whatever the request names.
  for (const image of found) {
    const { bytes } = await readImageInput(image.value, { ...opts, field: image.field });
    total += bytes.byteLength;
    if (total > opts.maxTotalBytes) throw new EaselError(422, "image_too_large", `${image.field}: the request's images are over ${opts.maxTotalBytes} bytes in all`, [{ path: image.field, message: `the request's images are over ${opts.maxTotalBytes} bytes in all` }]);
    if (/^https?:\/\//i.test(image.value)) image.set(bytesToBase64(bytes));
    // A1111 reads only `data:image/...` URIs: the bare base64 it decodes, whatever the type said.
    else if (/^data:/i.test(image.value)) image.set(image.value.slice(image.value.indexOf(",") + 1));
  }
  return copy;
}

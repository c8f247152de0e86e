/**
 * Image links anywhere in a request's content, fetched and put in their place as base64, as
 * SD-on-EKS's queue agent does with every http(s) and s3:// string of a task. Each fetch goes
 * through the gateway's one image reader: URL rules (section 6), size, time, a real image.
 */
import { config } from "../config";
import type { Env } from "../env";
import { EaselError } from "../errors";
import { bytesToBase64 } from "../lib/base64";
import { readImageInput } from "../lib/image-input";
import { isS3Link, readS3Image } from "../lib/s3-fetch";
import { MAX_INIT_IMAGE_BYTES } from "./intake";
import { ownOutputs } from "../storage/own-links";

/** A task names a few images (init, mask, ControlNet inputs); more links than this is a 422. */
const MAX_LINKS = 16;
const LINK = /^(https?|s3):\/\/\S+$/i;

/** `value` with every link string replaced by the base64 of the image it names; `under` prefixes error paths. */
export async function fetchLinks(env: Env, tenant: string, value: unknown, under: string, publicBaseUrl: string): Promise<unknown> {
  const found: { path: string; link: string }[] = [];
  const walk = (v: unknown, path: string[]): void => {
    if (typeof v === "string" && LINK.test(v.trim())) found.push({ path: [...path].join("."), link: v.trim() });
    else if (Array.isArray(v)) v.forEach((item, i) => walk(item, [...path, String(i)]));
    else if (v && typeof v === "object") for (const [k, item] of Object.entries(v)) walk(item, [...path, k]);
  };
  walk(value, []);
  if (!found.length) return value;
  if (found.length > MAX_LINKS) throw new EaselError(422, "too_many_links", `${under || "(body)"}: at most ${MAX_LINKS} links`, [{ path: under.replace(/\.$/, "") || "(body)", message: `at most ${MAX_LINKS} links` }]);
  const allowPrivate = config.allowPrivateUrls(env);
  const fetched = new Map<string, string>();
  await Promise.all(
    found.map(async ({ path, link }) => {
      const field = `${under}${path}`;
      const image = isS3Link(link)
        ? await readS3Image(link, config.s3(env), { field, maxBytes: MAX_INIT_IMAGE_BYTES, allowedPrefixes: config.tenant(env, tenant)?.s3_read_prefixes ?? [] })
        : await readImageInput(link, { field, allowPrivate, maxBytes: MAX_INIT_IMAGE_BYTES, local: ownOutputs(env, publicBaseUrl) });
      fetched.set(path, bytesToBase64(image.bytes));
    }),
  );
  const replace = (v: unknown, path: string[]): unknown => {
    const here = path.join(".");
    if (typeof v === "string") return fetched.get(here) ?? v;
    if (Array.isArray(v)) return v.map((item, i) => replace(item, [...path, String(i)]));
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, replace(item, [...path, k])]));
    return v;
  };
  return replace(value, []);
}

/**
 * The gateway's own output links, named as an input image (an output refined or upscaled by the
 * next job, as Replicate users chain predictions), are read straight from R2: on Cloudflare a
 * Worker's fetch of its own hostname does not come back to it. Only a link the outputs route would
 * serve counts: signed under a listed secret and unexpired.
 */
import { config } from "../config";
import type { Env } from "../env";
import { outputKeyFromPath, verifyOutputLink } from "./links";

/** For a URL under `base`'s `/v1/outputs/`: its bytes, or null when the link is not a valid one; undefined for any other URL. */
export function ownOutputs(env: Env, base: string): (url: string) => Promise<Uint8Array | null | undefined> {
  const prefix = `${base}/v1/outputs/`;
  return async (url) => {
    if (!url.startsWith(prefix)) return undefined;
    const parsed = new URL(url);
    // As the outputs route reads one: one path segment after the prefix (base64url needs no
    // escapes), and one `expires` and one `sig`; anything else is not a link the gateway signed.
    const file = url.slice(prefix.length).split(/[?#]/)[0] ?? "";
    const expires = parsed.searchParams.getAll("expires");
    const sig = parsed.searchParams.getAll("sig");
    const key = file.includes("/") ? undefined : outputKeyFromPath(file);
    if (!key || expires.length !== 1 || sig.length !== 1 || !(await verifyOutputLink(config.urlSigningSecrets(env), key, expires[0] ?? "", sig[0] ?? ""))) return null;
    const object = await env.IMAGES.get(key);
    return object ? new Uint8Array(await object.arrayBuffer()) : null;
  };
}

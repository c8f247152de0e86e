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
    // base64url needs no escapes: a link that has any is not one the gateway signed.
    const key = outputKeyFromPath(parsed.pathname.slice(parsed.pathname.lastIndexOf("/") + 1));
    const expires = parsed.searchParams.get("expires");
    const sig = parsed.searchParams.get("sig");
    if (!key || expires === null || sig === null || !(await verifyOutputLink(config.urlSigningSecrets(env), key, expires, sig))) return null;
    const object = await env.IMAGES.get(key);
    return object ? new Uint8Array(await object.arrayBuffer()) : null;
  };
}

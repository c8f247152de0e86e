import { base64ToBytes, base64UrlEncode } from "../lib/base64";
import { hmacSha256, timingSafeEqual } from "../lib/crypto";

/** Output links outlive a webhook's whole retry schedule (about 28 h by default). */
export const LINK_TTL_S = 7 * 24 * 3600;

async function signature(secret: string, key: string, expires: number): Promise<string> {
  return base64UrlEncode(await hmacSha256(secret, `${key}\n${expires}`));
}

/**
 * The R2 key travels as one URL segment, `<base64url(key)>.<ext>`, so any prefix fits; the
 * extension is the key's own (an SD-on-EKS `.out`), else `.png`, for whoever saves the file by its name.
 */
const keyToPath = (key: string): string => `${base64UrlEncode(new TextEncoder().encode(key))}${/\.[a-z0-9]{1,5}$/.exec(key)?.[0] ?? ".png"}`;

export function outputKeyFromPath(file: string): string | undefined {
  // base64url has no ".": whatever follows the last one is the extension.
  const bytes = base64ToBytes(file.replace(/\.[a-z0-9]{1,5}$/, ""));
  return bytes ? new TextDecoder().decode(bytes) : undefined;
}

/**
 * A download link for an R2 object that needs no API key: signed, and valid until it expires, at
 * least LINK_TTL_S from now and, given `keptUntilMs` (an ended job's deletion), for as long as the
 * job is kept: a link handed out once (a webhook, a Replicate `output`) works while its image exists.
 */
export async function signedOutputUrl(base: string, secret: string, key: string, nowMs = Date.now(), keptUntilMs?: number): Promise<string> {
  const expires = Math.max(Math.floor(nowMs / 1000) + LINK_TTL_S, Math.floor((keptUntilMs ?? 0) / 1000));
  return `${base}/v1/outputs/${keyToPath(key)}?expires=${expires}&sig=${await signature(secret, key, expires)}`;
}

/** Valid when signed under any of `secrets` (rotation: links issued under a listed older key keep working). */
export async function verifyOutputLink(secrets: readonly string[], key: string, expires: string, sig: string, nowMs = Date.now()): Promise<boolean> {
  const exp = Number(expires);
  if (!Number.isInteger(exp) || exp * 1000 < nowMs) return false;
  // Every key is tried: which one matched does not show in the time taken.
  const matches = await Promise.all(secrets.map(async (secret) => timingSafeEqual(await signature(secret, key, exp), sig)));
  return matches.includes(true);
}

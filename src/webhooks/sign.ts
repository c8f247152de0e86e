import { base64ToBytes, bytesToBase64 } from "../lib/base64";
import { hmacSha256, hmacSha256Stream, prefixedStream } from "../lib/crypto";
import type { StreamedBody } from "../lib/json-slots";

/** A `whsec_` secret's key bytes: the base64 after the prefix (a bare secret is base64 too). */
function secretKey(secret: string): Uint8Array {
  const bytes = base64ToBytes(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret);
  if (!bytes) throw new Error("a webhook secret is not base64");
  return bytes;
}

/**
 * The Standard Webhooks `webhook-signature` header: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
 * for every secret, space-separated, so receivers on an old or a new secret both verify (rotation).
 */
export async function signatureHeader(secrets: string[], msgId: string, timestampSec: number, body: string | StreamedBody): Promise<string> {
  const prefix = `${msgId}.${timestampSec}.`;
  // A body with images is signed as it streams by, read once for every secret.
  const macs =
    typeof body === "string"
      ? await Promise.all(secrets.map((s) => hmacSha256(secretKey(s), prefix + body, s)))
      : await hmacSha256Stream(secrets.map(secretKey), prefixedStream(prefix, body.open()));
  return macs.map((mac) => `v1,${bytesToBase64(mac)}`).join(" ");
}

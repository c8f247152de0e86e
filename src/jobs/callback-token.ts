import { config } from "../config";
import type { Env } from "../env";
import { base64UrlEncode } from "../lib/base64";
import { hmacSha256, timingSafeEqual } from "../lib/crypto";

/**
 * The token in a backend's callback URL: a MAC of the run id and attempt under the gateway's
 * signing key, so the Worker tells a callback it issued from a forged one before it touches any
 * Durable Object. The message format cannot collide with an output link's (`key\nexpires`).
 */
const tokenUnder = async (secret: string, runId: string, attempt: number): Promise<string> => base64UrlEncode(await hmacSha256(secret, `callback ${runId} ${attempt}`));

/** Issued under the first signing key. */
export async function callbackToken(env: Env, runId: string, attempt: number): Promise<string> {
  return tokenUnder(config.urlSigningSecrets(env)[0], runId, attempt);
}

/** Issued under any listed key: a callback of an attempt made before a key rotation still arrives. */
export async function verifyCallbackToken(env: Env, runId: string, attempt: number, token: string): Promise<boolean> {
  const matches = await Promise.all(config.urlSigningSecrets(env).map(async (secret) => timingSafeEqual(await tokenUnder(secret, runId, attempt), token)));
  return matches.includes(true);
}

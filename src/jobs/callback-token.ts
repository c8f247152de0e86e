import { config } from "../config";
import type { Env } from "../env";
import { base64UrlEncode } from "../lib/base64";
import { hmacSha256, timingSafeEqual } from "../lib/crypto";

/**
 * The token in a backend's callback URL: a MAC of the run id and attempt under the gateway's
 * signing key, so the Worker tells a callback it issued from a forged one before it touches any
 * Durable Object. The message format cannot collide with an output link's (`key\nexpires`).
 */
export async function callbackToken(env: Env, runId: string, attempt: number): Promise<string> {
  return base64UrlEncode(await hmacSha256(config.urlSigningSecret(env), `callback ${runId} ${attempt}`));
}

export async function verifyCallbackToken(env: Env, runId: string, attempt: number, token: string): Promise<boolean> {
  return timingSafeEqual(await callbackToken(env, runId, attempt), token);
}

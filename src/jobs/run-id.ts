/**
 * Run ids carry a MAC, so the Worker tells an id it minted from any other string before a
 * Durable Object is named: reading an id that was never minted creates nothing anywhere.
 * `run_` + base32(16 random bytes ‖ first 8 bytes of HMAC-SHA256(k_id, those bytes)), where
 * k_id = HMAC-SHA256(URL_SIGNING_SECRET, "easel run id v1"): its own key, so a run id's MAC is
 * never a link's or a callback's.
 */
import { config } from "../config";
import type { Env } from "../env";
import { base32, base32Decode, hmacSha256, timingSafeEqual } from "../lib/crypto";

const RANDOM_BYTES = 16;
const MAC_BYTES = 8;
const PREFIX = "run_";
/** 24 bytes in base32. */
const ENCODED_LENGTH = Math.ceil(((RANDOM_BYTES + MAC_BYTES) * 8) / 5);

/** k_id per signing secret, imported once (a run id is checked on every read; the secret list is short). */
const idKeys = new Map<string, Promise<CryptoKey>>();
const ID_KEYS_MAX = 32;

function idKey(secret: string): Promise<CryptoKey> {
  let key = idKeys.get(secret);
  if (!key) {
    if (idKeys.size >= ID_KEYS_MAX) idKeys.clear();
    key = hmacSha256(secret, "easel run id v1").then((raw) => crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]));
    idKeys.set(secret, key);
  }
  return key;
}

const macOf = async (secret: string, random: Uint8Array): Promise<Uint8Array> => new Uint8Array(await crypto.subtle.sign("HMAC", await idKey(secret), random)).slice(0, MAC_BYTES);

/** A new run id, under the first signing key. */
export async function mintRunId(env: Env): Promise<string> {
  const random = crypto.getRandomValues(new Uint8Array(RANDOM_BYTES));
  const bytes = new Uint8Array(RANDOM_BYTES + MAC_BYTES);
  bytes.set(random);
  bytes.set(await macOf(config.urlSigningSecrets(env)[0], random), RANDOM_BYTES);
  return PREFIX + base32(bytes);
}

/** Whether `id` is a run id minted under any listed signing key: anything else names no job. */
export async function checkRunId(env: Env, id: string): Promise<boolean> {
  const secrets = config.urlSigningSecrets(env);
  if (!id.startsWith(PREFIX) || id.length !== PREFIX.length + ENCODED_LENGTH) return false;
  const bytes = base32Decode(id.slice(PREFIX.length));
  if (!bytes || bytes.byteLength !== RANDOM_BYTES + MAC_BYTES) return false;
  const random = bytes.slice(0, RANDOM_BYTES);
  const mac = bytes.slice(RANDOM_BYTES);
  const matches = await Promise.all(secrets.map(async (secret) => timingSafeEqual(await macOf(secret, random), mac)));
  return matches.includes(true);
}

/** The shape of a run id alone (no key needed): what a cursor or a log line may hold. */
export const RUN_ID_PATTERN = `run_[a-z2-7]{${ENCODED_LENGTH}}`;

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

/** What an id names, with the prefix it carries and the domain its MAC key is derived for. */
const KINDS = {
  run: { prefix: PREFIX, domain: "easel run id v1" },
  // RunPod's answers that need no GPU (getModels, getOptions...), kept a while for `/status`.
  instant: { prefix: "sync-", domain: "easel instant id v1" },
} as const;
type IdKind = keyof typeof KINDS;

/** k_id per signing secret and kind, imported once (an id is checked on every read; the secret list is short). */
const idKeys = new Map<string, Promise<CryptoKey>>();
const ID_KEYS_MAX = 32;

function idKey(secret: string, kind: IdKind): Promise<CryptoKey> {
  const name = `${kind}\n${secret}`;
  let key = idKeys.get(name);
  if (!key) {
    if (idKeys.size >= ID_KEYS_MAX) idKeys.clear();
    key = hmacSha256(secret, KINDS[kind].domain).then((raw) => crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]));
    idKeys.set(name, key);
  }
  return key;
}

/**
 * The MAC covers the random bytes and, when the id is bound to a place (an instant answer to its
 * RunPod endpoint), that place's name: the id is then found nowhere else. A run id is bound to none.
 */
async function macOf(secret: string, random: Uint8Array, kind: IdKind, place: string): Promise<Uint8Array> {
  const named = new TextEncoder().encode(place);
  const message = new Uint8Array(random.byteLength + named.byteLength);
  message.set(random);
  message.set(named, random.byteLength);
  return new Uint8Array(await crypto.subtle.sign("HMAC", await idKey(secret, kind), message)).slice(0, MAC_BYTES);
}

async function mintId(env: Env, kind: IdKind, place = ""): Promise<string> {
  const random = crypto.getRandomValues(new Uint8Array(RANDOM_BYTES));
  const bytes = new Uint8Array(RANDOM_BYTES + MAC_BYTES);
  bytes.set(random);
  bytes.set(await macOf(config.urlSigningSecrets(env)[0], random, kind, place), RANDOM_BYTES);
  return KINDS[kind].prefix + base32(bytes);
}

async function checkId(env: Env, id: string, kind: IdKind, place = ""): Promise<boolean> {
  const secrets = config.urlSigningSecrets(env);
  const { prefix } = KINDS[kind];
  if (!id.startsWith(prefix) || id.length !== prefix.length + ENCODED_LENGTH) return false;
  const bytes = base32Decode(id.slice(prefix.length));
  if (!bytes || bytes.byteLength !== RANDOM_BYTES + MAC_BYTES) return false;
  const random = bytes.slice(0, RANDOM_BYTES);
  const mac = bytes.slice(RANDOM_BYTES);
  const matches = await Promise.all(secrets.map(async (secret) => timingSafeEqual(await macOf(secret, random, kind, place), mac)));
  return matches.includes(true);
}

/** A new run id, under the first signing key. */
export const mintRunId = (env: Env): Promise<string> => mintId(env, "run");

/** Whether `id` is a run id minted under any listed signing key: anything else names no job. */
export const checkRunId = (env: Env, id: string): Promise<boolean> => checkId(env, id, "run");

/** The id of an answer that needed no job (RunPod's getModels...), bound to its endpoint: read back only there, and only when minted here. */
export const mintInstantId = (env: Env, endpoint: string): Promise<string> => mintId(env, "instant", endpoint);
export const checkInstantId = (env: Env, id: string, endpoint: string): Promise<boolean> => checkId(env, id, "instant", endpoint);

/** The shape of a run id alone (no key needed): what a cursor or a log line may hold. */
export const RUN_ID_PATTERN = `run_[a-z2-7]{${ENCODED_LENGTH}}`;

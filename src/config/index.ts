import type { z } from "@hono/zod-openapi";
import { EaselError } from "../errors";
import type { Env } from "../env";
import { BackendsSchema, EndpointsSchema, TenantsSchema, type BackendConfig, type EndpointConfig, type TenantConfig } from "./schema";

export type { BackendConfig, EndpointConfig, TenantConfig, BackendKind, JobType } from "./schema";
export { DEFAULT_TIMEOUT_S } from "./schema";

const DEFAULT_RETENTION_S = 30 * 24 * 3600;
const MIN_RETENTION_S = 60;
const DEFAULT_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,36000";

/** A configuration value that cannot be used: a 500 naming the variable, never its content. */
export const badConfig = (name: string, problem: string): EaselError =>
  new EaselError(500, "config_invalid", `${name} is invalid: ${problem}`);

/** `badConfig`'s message, as an RPC hands it back: the class's name before it. */
const CONFIG_ERROR = /^(?:EaselError: )?([A-Z][A-Z0-9_]* is invalid: [^]*)$/;

/**
 * A configuration error thrown inside a Durable Object reaches the Worker as a plain Error (an
 * RPC keeps the message, prefixed with the class's name, not the class): recognized by its
 * message, which names the variable and never holds its content, so the client still gets the
 * 500 naming it.
 */
export function configErrorFrom(err: unknown): EaselError | undefined {
  const message = err instanceof Error ? CONFIG_ERROR.exec(err.message)?.[1] : undefined;
  return message === undefined ? undefined : new EaselError(500, "config_invalid", message);
}

/** Parses one variable once per distinct raw value: config is read on every request. */
function memo<T>(name: string, parse: (raw: string | undefined) => T): (raw: string | undefined) => T {
  let last: { raw: string | undefined; value: T } | undefined;
  return (raw) => {
    if (last && last.raw === raw) return last.value;
    const value = parse(raw);
    last = { raw, value };
    return value;
  };
}

function parseJson<S extends z.ZodType>(name: string, schema: S, raw: string | undefined, fallback: string): z.output<S> {
  let data: unknown;
  try {
    data = JSON.parse(raw ?? fallback);
  } catch {
    throw badConfig(name, "not valid JSON");
  }
  const result = schema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw badConfig(name, `${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  return result.data;
}

const tenants = memo("TENANTS", (raw) => new Map(Object.entries(parseJson("TENANTS", TenantsSchema, raw, "{}"))));
const backends = memo("BACKENDS", (raw) => parseJson("BACKENDS", BackendsSchema, raw, "[]"));
const endpoints = memo("ENDPOINTS", (raw) => new Map(Object.entries(parseJson("ENDPOINTS", EndpointsSchema, raw, "{}"))));
const retrySchedule = memo("WEBHOOK_RETRY_SCHEDULE", (raw) => {
  const parts = (raw?.trim() || DEFAULT_RETRY_SCHEDULE).split(",").map((s) => s.trim());
  // An empty entry ("5,,300") is a mistake, not a retry at once.
  if (parts.some((s) => s === "" || !Number.isFinite(Number(s)) || Number(s) < 0)) throw badConfig("WEBHOOK_RETRY_SCHEDULE", "expected comma-separated seconds");
  return parts.map(Number);
});
const retention = memo("RETENTION_S", (raw) => {
  const seconds = raw?.trim() ? Number(raw.trim()) : DEFAULT_RETENTION_S;
  if (!Number.isInteger(seconds) || seconds < MIN_RETENTION_S) throw badConfig("RETENTION_S", `expected whole seconds, at least ${MIN_RETENTION_S}`);
  return seconds * 1000;
});
const flag = (name: string) =>
  memo(name, (raw) => {
    const v = (raw ?? "false").trim().toLowerCase();
    if (v !== "true" && v !== "false") throw badConfig(name, "expected true or false");
    return v === "true";
  });
const allowPrivate = flag("ALLOW_PRIVATE_URLS");
const baseUrl = memo("PUBLIC_BASE_URL", (raw) => {
  if (!raw) return undefined;
  try {
    return new URL(raw).toString().replace(/\/+$/, "");
  } catch {
    throw badConfig("PUBLIC_BASE_URL", "not a URL");
  }
});

/**
 * The keys of output links, callback tokens and run ids, first one signing, every one verifying
 * (rotation). There is no built-in fallback: a public constant would sign for anyone.
 */
const signingSecrets = memo("URL_SIGNING_SECRET", (raw): [string, ...string[]] => {
  const [first, ...rest] = (raw ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (first === undefined) throw badConfig("URL_SIGNING_SECRET", "not set (npm start writes one into .dev.vars; deployed: wrangler secret put URL_SIGNING_SECRET)");
  return [first, ...rest];
});

export const config = {
  tenants: (env: Env): Map<string, TenantConfig> => tenants(env.TENANTS),
  tenant: (env: Env, name: string): TenantConfig | undefined => tenants(env.TENANTS).get(name),
  backends: (env: Env): BackendConfig[] => backends(env.BACKENDS),
  backend: (env: Env, name: string): BackendConfig | undefined => backends(env.BACKENDS).find((b) => b.name === name),
  /** A RunPod endpoint id or Cerebrium app name the operator configured; unlisted names stand for nothing. */
  endpoint: (env: Env, name: string): EndpointConfig | undefined => {
    const found = endpoints(env.ENDPOINTS).get(name);
    if (found?.backend && !backends(env.BACKENDS).some((b) => b.name === found.backend)) throw badConfig("ENDPOINTS", `${name}.backend: no backend named "${found.backend}"`);
    return found;
  },
  /** Every configured deployment name with what it stands for (Replicate looks a model up by its version). */
  endpoints: (env: Env): [string, EndpointConfig][] => [...endpoints(env.ENDPOINTS)],
  /** The bucket of the S3 store that SD-on-EKS outputs are written to, when configured. */
  s3OutputBucket: (env: Env): string | undefined => {
    const bucket = env.S3_OUTPUT_BUCKET?.trim();
    if (!bucket) return undefined;
    if (!env.S3_ENDPOINT || !env.S3_ACCESS_KEY_ID || !env.S3_SECRET_ACCESS_KEY) throw badConfig("S3_OUTPUT_BUCKET", "it needs the S3 store (S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY)");
    return bucket;
  },
  retrySchedule: (env: Env): number[] => retrySchedule(env.WEBHOOK_RETRY_SCHEDULE),
  /** How long an ended job is kept before it and its files are deleted. */
  retentionMs: (env: Env): number => retention(env.RETENTION_S),
  allowPrivateUrls: (env: Env): boolean => allowPrivate(env.ALLOW_PRIVATE_URLS),
  /** Base of every link handed out; falls back to the origin the request came in on. */
  publicBaseUrl: (env: Env, requestUrl?: string): string =>
    baseUrl(env.PUBLIC_BASE_URL) ?? (requestUrl ? new URL(requestUrl).origin : "http://127.0.0.1:8787"),
  bucketName: (env: Env): string => env.R2_BUCKET_NAME || "easel-images",
  /** Never empty: the first signs, every one verifies. */
  urlSigningSecrets: (env: Env): [string, ...string[]] => signingSecrets(env.URL_SIGNING_SECRET),
  s3: (env: Env) =>
    env.S3_ENDPOINT && env.S3_ACCESS_KEY_ID && env.S3_SECRET_ACCESS_KEY
      ? { endpoint: env.S3_ENDPOINT, region: env.S3_REGION || "us-east-1", accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY }
      : undefined,
};

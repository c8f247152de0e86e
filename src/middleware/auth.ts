import { createMiddleware } from "hono/factory";
import type { Context } from "hono";
import { config } from "../config";
import type { Env } from "../env";
import { EaselError } from "../errors";
import { sha256Hex, timingSafeEqual } from "../lib/crypto";

/** `rateCounted`: this request was counted against the tenant's rate_limit already (src/middleware/submit-rate.ts). */
export type AuthVariables = { tenant: string; rateCounted?: true };
export type AppEnv = { Bindings: Env; Variables: AuthVariables };

let hashed: { raw: string | undefined; keys: Promise<{ tenant: string; hash: string }[]> } | undefined;

/** Digests of every configured key, computed once per TENANTS value. */
function keyDigests(env: Env): Promise<{ tenant: string; hash: string }[]> {
  if (hashed && hashed.raw === env.TENANTS) return hashed.keys;
  const entries = [...config.tenants(env)].flatMap(([tenant, cfg]) => cfg.api_keys.map((key) => ({ tenant, key })));
  const keys = Promise.all(entries.map(async ({ tenant, key }) => ({ tenant, hash: await sha256Hex(key) })));
  hashed = { raw: env.TENANTS, keys };
  return keys;
}

/** The tenant owning `key`, compared in constant time against every configured key. */
export async function tenantForKey(env: Env, key: string | undefined): Promise<string | undefined> {
  const digests = await keyDigests(env);
  if (!key) return undefined;
  const given = await sha256Hex(key);
  let found: string | undefined;
  // Every key is compared, hit or miss, so timing says nothing about which one matched.
  for (const d of digests) if (timingSafeEqual(given, d.hash) && !found) found = d.tenant;
  return found;
}

export const bearerKey = (c: Context): string | undefined => {
  const h = c.req.header("authorization");
  const m = h?.match(/^Bearer\s+(.+)$/i);
  return m?.[1]?.trim();
};

export interface TenantAuthOptions {
  /** Where this API carries its key (a header, basic auth, a body field...). */
  key?: (c: Context) => string | undefined | Promise<string | undefined>;
  /** Builds the error for a missing or unknown key, in the API's own shape. */
  onUnauthorized?: (c: Context) => Response | Promise<Response>;
}

/** Authenticates the caller as a tenant (`c.var.tenant`); 401 otherwise. */
export const tenantAuth = (options: TenantAuthOptions = {}) => {
  const readKey = options.key ?? bearerKey;
  return createMiddleware<AppEnv>(async (c, next) => {
    const tenant = await tenantForKey(c.env, await readKey(c));
    if (!tenant) {
      if (options.onUnauthorized) return options.onUnauthorized(c);
      throw new EaselError(401, "unauthorized", "missing or unknown API key", undefined, { "www-authenticate": 'Bearer realm="easel"' });
    }
    c.set("tenant", tenant);
    await next();
  });
};

import type { AdmitResult, IndexRow } from "../contracts/tenant";
import { config } from "../config";
import type { Env } from "../env";
import { EaselError } from "../errors";
import { TERMINAL_STATUSES } from "../schemas/job";
import { indexObject, tenantHome } from "../tenant-shards";
import { readIndexed } from "./job-index";

/** What a client over `max_active_jobs` is told to wait before trying again: jobs end at their own pace. */
const ACTIVE_RETRY_S = 2;

/**
 * Holds a tenant to its `rate_limit`: every request that would create a job counts, accepted or
 * not. A fixed window in the tenant's home object, one count (see the README for why not the
 * rate-limiting binding, and for the ceiling this puts on such a tenant).
 */
export async function checkRate(env: Env, tenant: string): Promise<void> {
  const limit = config.tenant(env, tenant)?.rate_limit;
  if (!limit) return;
  const res = await tenantHome(env, tenant).hit(limit.requests, limit.period_s * 1000);
  if (res.ok) return;
  throw new EaselError(429, "rate_limited", `over the rate limit of ${limit.requests} job submissions per ${limit.period_s} s`, undefined, limitHeaders(limit.requests, res.remaining, Math.max(1, Math.ceil(res.reset_ms / 1000))));
}

/**
 * Enters jobs in their tenant's index, holding the tenant to `max_active_jobs` (queued + running)
 * in the same step, before anything of the jobs is stored: refused jobs leave nothing behind. The
 * jobs of one request (several rows) are admitted together or refused together. Such a tenant's
 * index is whole in its home object (src/tenant-shards.ts), where the count is one.
 */
export async function admitJob(env: Env, tenant: string, rows: IndexRow | IndexRow[]): Promise<void> {
  const all = [rows].flat();
  const max = config.tenant(env, tenant)?.max_active_jobs ?? null;
  // Nothing can refuse them: each row goes to its run's shard.
  if (max === null) {
    await Promise.all(all.map((row) => indexObject(env, tenant, row.id).admit(tenant, row, null)));
    return;
  }
  await holdToActiveLimit(env, tenant, max, all.length, (index) => index.admit(tenant, all, max));
}

/** RunPod's `/retry`: a failed job becomes active again, held to `max_active_jobs` as a new one is. */
export async function readmitJob(env: Env, tenant: string, id: string): Promise<void> {
  const max = config.tenant(env, tenant)?.max_active_jobs ?? null;
  if (max === null) {
    await indexObject(env, tenant, id).reopen(id, null);
    return;
  }
  await holdToActiveLimit(env, tenant, max, 1, (index) => index.reopen(id, max));
}

/** Asks the tenant's home object for `count` places; refused, its oldest active rows are checked once and it is asked again. */
async function holdToActiveLimit(env: Env, tenant: string, max: number, count: number, ask: (index: ReturnType<typeof tenantHome>) => Promise<AdmitResult>): Promise<void> {
  const index = tenantHome(env, tenant);
  let res = await ask(index);
  if (!res.ok && res.verify.length) {
    // Old active rows may be wrong (an update still being retried, an intake that died half-way):
    // check them against their jobs, and ask again if that freed a place.
    const verify = res.verify;
    const jobs = await Promise.all(verify.map((r) => readIndexed(env, tenant, { row: r, index })));
    if (jobs.some((j) => !j || TERMINAL_STATUSES.some((t) => t === j.status))) res = await ask(index);
  }
  if (res.ok) return;
  const message =
    count === 1
      ? `this tenant already has ${res.active} jobs queued or running (max_active_jobs is ${max})`
      : `this tenant has ${res.active} jobs queued or running, and the ${count} this request makes would take it past max_active_jobs (${max})`;
  throw new EaselError(429, "too_many_active_jobs", message, undefined, limitHeaders(max, 0, ACTIVE_RETRY_S));
}

/** The headers of every 429: `Retry-After` and the IETF RateLimit fields, reset in delta seconds. */
export const limitHeaders = (limit: number, remaining: number, resetS: number): Record<string, string> => ({
  "retry-after": String(resetS),
  "ratelimit-limit": String(limit),
  "ratelimit-remaining": String(remaining),
  "ratelimit-reset": String(resetS),
});

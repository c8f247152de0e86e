import type { TenantRpc } from "../contracts/rpc";
import type { IndexQuery, IndexRow } from "../contracts/tenant";
import type { Env } from "../env";
import { TERMINAL_STATUSES, type Job } from "../schemas/job";
import { hasActiveLimit, indexObjects, runShard, tenantHome } from "../tenant-shards";
import { freeClaims } from "./claims";
import { isOk, jobStub } from "./client";

/** An index row and the object it came from, where any correction of it goes. */
export type IndexEntry = { row: IndexRow; index: TenantRpc };

const newestFirst = (a: IndexRow, b: IndexRow): number => b.created_at - a.created_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * The tenant's first `q.limit` index rows after `q.before`, newest first by (created_at, id): each
 * object that holds rows (src/tenant-shards.ts) gives its own first `q.limit`, filters applied, and
 * the merge keeps the first `q.limit` of all, which are therefore exactly the tenant's. A row held
 * twice (entered before `max_active_jobs` changed, reported after) comes once.
 */
export async function indexPage(env: Env, tenant: string, q: IndexQuery): Promise<IndexEntry[]> {
  const pages = await Promise.all(indexObjects(env, tenant).map(async (index) => (await index.list(q)).map((row) => ({ row, index }))));
  const merged = pages.flat().sort((a, b) => newestFirst(a.row, b.row));
  return merged.filter((e, i) => merged[i - 1]?.row.id !== e.row.id).slice(0, q.limit);
}

/**
 * Reads an indexed job from its own object, the source of truth, and corrects the row in `index`
 * on the way: a missed end is recorded, and a row whose job was never created (intake stopped
 * half-way) is removed once old enough not to be a submit under way. Undefined when there is no such job.
 */
export async function readIndexed(env: Env, tenant: string, { row, index }: IndexEntry): Promise<Job | undefined> {
  const res = await jobStub(env, row.id).get(tenant);
  if (!isOk(res)) {
    await index.dropMissing(row.id);
    return undefined;
  }
  const job = res.snapshot.job;
  // The index keeps active (queued or running) or the final status: only an end it missed is news.
  if (job.status !== row.status && TERMINAL_STATUSES.some((t) => t === job.status)) await index.setStatus({ ...row, status: job.status });
  return job;
}

/**
 * The job reached the end of RETENTION_S: the keys it claimed, then its rows in its run's shard
 * (and its index row at home for a tenant with `max_active_jobs`). Each step can be done again.
 */
export async function purgeTenantRows(env: Env, tenant: string, runId: string): Promise<void> {
  await freeClaims(env, tenant, runId);
  await runShard(env, tenant, runId).purgeJob(runId);
  if (hasActiveLimit(env, tenant)) await tenantHome(env, tenant).purgeJob(runId);
}

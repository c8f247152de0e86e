/**
 * What dialects keep per run beside the job, in the run's shard of its tenant (src/tenant-shards.ts):
 * the runs synchronous A1111 calls wait on, and RunPod's jobs per endpoint. A listing asks every
 * shard once (TENANT_SHARDS calls, each for at most `limit` rows) and merges their first `limit`.
 */
import type { EndpointJob } from "../contracts/tenant";
import type { Env } from "../env";
import { allShards } from "../tenant-shards";

/** The runs the tenant's A1111 calls wait on, oldest first, at most `limit`. */
export async function waitingRuns(env: Env, tenant: string, limit: number): Promise<string[]> {
  const lists = await Promise.all(allShards(env, tenant).map((s) => s.listWaiting(limit)));
  return lists
    .flat()
    .sort((a, b) => a.created_at - b.created_at || (a.run_id < b.run_id ? -1 : a.run_id > b.run_id ? 1 : 0))
    .slice(0, limit)
    .map((w) => w.run_id);
}

/** The endpoint's jobs of the last day counted across the shards by the status last seen, and their retries. */
export async function endpointCounts(env: Env, tenant: string, endpoint: string): Promise<Map<string, { n: number; retried: number }>> {
  const counts = new Map<string, { n: number; retried: number }>();
  for (const c of (await Promise.all(allShards(env, tenant).map((s) => s.endpointCounts(endpoint)))).flat()) {
    const had = counts.get(c.status) ?? { n: 0, retried: 0 };
    counts.set(c.status, { n: had.n + c.n, retried: had.retried + (c.retried ?? 0) });
  }
  return counts;
}

/**
 * The endpoint's jobs not seen to end, oldest first: a page of at most `limit` from each shard,
 * after that shard's `after` (the last row it gave), merged. Paging each shard on its own key
 * reaches every row however the shards' pages interleave.
 */
export async function endpointLiveJobs(env: Env, tenant: string, endpoint: string, after: (EndpointJob | null)[], limit: number): Promise<EndpointJob[][]> {
  return Promise.all(allShards(env, tenant).map((s, n) => s.endpointLiveJobs(endpoint, after[n] ?? null, limit)));
}

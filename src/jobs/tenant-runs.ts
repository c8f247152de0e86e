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

/** The endpoint's jobs of the last day, newest first, at most `limit`. */
export async function endpointJobs(env: Env, tenant: string, endpoint: string, limit: number): Promise<EndpointJob[]> {
  const lists = await Promise.all(allShards(env, tenant).map((s) => s.endpointJobs(endpoint, limit)));
  return lists
    .flat()
    .sort((a, b) => b.created_at - a.created_at || (a.run_id < b.run_id ? 1 : a.run_id > b.run_id ? -1 : 0))
    .slice(0, limit);
}

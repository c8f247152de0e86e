/**
 * Idempotency keys and SD-on-EKS task ids: each claimed in its key's shard of the tenant
 * (src/tenant-shards.ts) and noted in its run's shard, so that the job's purge, which knows only
 * its run id, can free the key.
 */
import type { ClaimResult, ClaimScope } from "../contracts/tenant";
import type { Env } from "../env";
import { keyShard, runShard } from "../tenant-shards";

/**
 * Binds `key` to `runId` unless it is bound already (then the first run id comes back, or a
 * conflict for another `hash`). The note is written beside the claim, not after it: one round trip.
 */
export async function claimKey(env: Env, tenant: string, scope: ClaimScope, key: string, hash: string, runId: string, ttlMs: number | null): Promise<ClaimResult> {
  const ref = { scope, key };
  const runs = runShard(env, tenant, runId);
  const [claim] = await Promise.all([keyShard(env, tenant, key).claim(scope, key, hash, runId, ttlMs), runs.noteClaim(runId, ref, ttlMs)]);
  // The key is another run's: this run holds nothing there.
  if (claim.runId !== runId) await runs.unnoteClaim(runId, ref);
  return claim;
}

/** A key this request claimed for `runId`, whose job was refused before it existed: free again, its note gone. */
export async function releaseKey(env: Env, tenant: string, scope: ClaimScope, key: string, runId: string): Promise<void> {
  await Promise.all([keyShard(env, tenant, key).release(scope, key, runId), runShard(env, tenant, runId).unnoteClaim(runId, { scope, key })]);
}

/** The job behind `runId` is deleted (RETENTION_S): every key it claimed is free again. */
export async function freeClaims(env: Env, tenant: string, runId: string): Promise<void> {
  const refs = await runShard(env, tenant, runId).claimRefs(runId);
  await Promise.all(refs.map((ref) => keyShard(env, tenant, ref.key).release(ref.scope, ref.key, runId)));
}

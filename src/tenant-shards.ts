/**
 * Which of a tenant's objects holds what (durable-objects/tenant.ts). What grows with submits is
 * spread over TENANT_SHARDS shard objects per tenant: index rows, A1111 waits and RunPod endpoint
 * rows by a hash of the run id, idempotency keys and task ids by a hash of the key, so every later
 * call about a job or key finds its object without asking. The home object, named by the tenant,
 * keeps the tenant's settings, its rate window, and the whole index of a tenant with
 * `max_active_jobs` (one count). The count of shards is fixed: changing it would move every row.
 */
import { config } from "./config";
import { rpc, type TenantRpc } from "./contracts/rpc";
import type { Env } from "./env";

export const TENANT_SHARDS = 16;

/** The shard a run id or key falls in. FNV-1a, 32 bits: it spreads random ids and clients' keys evenly; it guards nothing. */
export function shardOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0) % TENANT_SHARDS;
}

/** The leading NUL keeps a shard's name apart from every tenant's (a home is named by its tenant). */
export const shardName = (tenant: string, n: number): string => `\u0000shard/${n}/${tenant}`;

const shard = (env: Env, tenant: string, n: number): TenantRpc => rpc<TenantRpc>(env.TENANT_STATE, shardName(tenant, n));

export const tenantHome = (env: Env, tenant: string): TenantRpc => rpc<TenantRpc>(env.TENANT_STATE, tenant);

/** The shard of a run: its A1111 wait, its RunPod endpoint row, the notes of the keys it claimed. */
export const runShard = (env: Env, tenant: string, runId: string): TenantRpc => shard(env, tenant, shardOf(runId));

/** The shard of an idempotency key or a task id. */
export const keyShard = (env: Env, tenant: string, key: string): TenantRpc => shard(env, tenant, shardOf(key));

export const allShards = (env: Env, tenant: string): TenantRpc[] => Array.from({ length: TENANT_SHARDS }, (_, n) => shard(env, tenant, n));

/** Whether the tenant has a `max_active_jobs`: only then can entering a job in the index refuse it. */
export const hasActiveLimit = (env: Env, tenant: string): boolean => (config.tenant(env, tenant)?.max_active_jobs ?? null) !== null;

/** The object that holds the job's index row: the home for a tenant with `max_active_jobs`, else the run's shard. */
export const indexObject = (env: Env, tenant: string, runId: string): TenantRpc => (hasActiveLimit(env, tenant) ? tenantHome(env, tenant) : runShard(env, tenant, runId));

/**
 * Every object that may hold index rows of the tenant: the shards and the home, whichever the
 * tenant's configuration says today (rows stay where they were entered when `max_active_jobs` is
 * set or removed).
 */
export const indexObjects = (env: Env, tenant: string): TenantRpc[] => [tenantHome(env, tenant), ...allShards(env, tenant)];

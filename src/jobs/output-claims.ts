/**
 * Output prefixes a client chooses (SD-on-EKS locations) are one namespace across tenants (one
 * bucket): each is claimed in a registry, so no tenant can write into, or read back, another's. The
 * registry is spread over REGISTRY_SHARDS objects by the prefix's hash, so no one object takes every
 * such submit of every tenant. The leading NUL keeps the names apart from any configured tenant.
 */
import type { ClaimResult } from "../contracts/tenant";
import type { Env } from "../env";
import { sha256Hex } from "../lib/crypto";
import { rpc, type TenantRpc } from "../contracts/rpc";

const REGISTRY = "\u0000output-prefixes/";
const REGISTRY_SHARDS = 64;

async function registryFor(env: Env, prefix: string): Promise<TenantRpc> {
  const shard = Number.parseInt((await sha256Hex(prefix)).slice(0, 8), 16) % REGISTRY_SHARDS;
  return rpc<TenantRpc>(env.TENANT_STATE, `${REGISTRY}${shard}`);
}

/** Binds `prefix` to the tenant's `runId`; the same tenant asking again gets the first run id back. */
export async function claimOutputPrefix(env: Env, prefix: string, tenant: string, runId: string): Promise<ClaimResult> {
  return (await registryFor(env, prefix)).claim("eks_task", prefix, await sha256Hex(tenant), runId, null);
}

/** The job behind `runId` is gone (RETENTION_S): its prefix may be claimed anew. */
export async function releaseOutputPrefix(env: Env, prefix: string, runId: string): Promise<void> {
  await (await registryFor(env, prefix)).release("eks_task", prefix, runId);
}

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

/** The locations a location lies inside: `a` and `a/b` for `a/b/c`. */
const enclosing = (prefix: string): string[] => {
  const parts = prefix.split("/");
  return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join("/"));
};

/**
 * Binds `prefix` to the tenant's `runId`; the same tenant asking again gets the first run id back.
 * A location inside another account's is theirs too: its files would lie among that account's.
 */
export async function claimOutputPrefix(env: Env, prefix: string, tenant: string, runId: string): Promise<ClaimResult> {
  const owner = await sha256Hex(tenant);
  const holders = await Promise.all(enclosing(prefix).map(async (outer) => (await registryFor(env, outer)).holder("eks_task", outer)));
  const foreign = holders.find((h) => h !== null && h.hash !== owner);
  if (foreign) return { status: "conflict", runId: foreign.runId };
  return (await registryFor(env, prefix)).claim("eks_task", prefix, owner, runId, null);
}

/** The job behind `runId` is gone (RETENTION_S): its prefix may be claimed anew. */
export async function releaseOutputPrefix(env: Env, prefix: string, runId: string): Promise<void> {
  await (await registryFor(env, prefix)).release("eks_task", prefix, runId);
}

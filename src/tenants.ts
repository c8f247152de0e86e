import { rpc, type TenantRpc } from "./contracts/rpc";
import type { Env } from "./env";

export type TenantApi = TenantRpc;

export const tenantStub = (env: Env, tenant: string): TenantApi => rpc<TenantRpc>(env.TENANT_STATE, tenant);

import { rpc, type TenantRpc } from "./contracts/rpc";
import type { Env } from "./env";

export const tenantStub = (env: Env, tenant: string): TenantRpc => rpc<TenantRpc>(env.TENANT_STATE, tenant);

import type { TenantObject } from "../durable-objects/tenant";
import type { Env } from "./env";

/** The tenant object's RPC surface, typed by the class (its options are free-form JSON). */
export type TenantApi = Pick<
  TenantObject,
  | "claim"
  | "release"
  | "lookup"
  | "getOptions"
  | "setOptions"
  | "putResult"
  | "getResult"
  | "admit"
  | "forget"
  | "dropMissing"
  | "setStatus"
  | "list"
  | "hit"
  | "addWaiting"
  | "removeWaiting"
  | "listWaiting"
  | "trackEndpointJob"
  | "endpointJobs"
  | "noteEndpointJob"
  | "reopen"
  | "purgeJob"
>;

export const tenantStub = (env: Env, tenant: string): TenantApi => env.TENANT_STATE.get(env.TENANT_STATE.idFromName(tenant)) as unknown as TenantApi;

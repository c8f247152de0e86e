import { env } from "cloudflare:workers";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import type { JobObject } from "../../../durable-objects/job/object";
import type { TenantObject } from "../../../durable-objects/tenant";

/**
 * The namespaces typed by their classes, for tests that reach inside an object (`runInDurableObject`)
 * or call it directly; the Worker types its stubs by the RPC surfaces in src/contracts/rpc.ts.
 */
export const jobObjects = env.JOBS as unknown as DurableObjectNamespace<JobObject>;
export const schedulerObjects = env.BACKEND_SCHEDULERS as unknown as DurableObjectNamespace<BackendScheduler>;
export const tenantObjects = env.TENANT_STATE as unknown as DurableObjectNamespace<TenantObject>;

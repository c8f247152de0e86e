import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import type { JobLedger } from "../../../durable-objects/job/ledger";
import { keepGenerated } from "../../../durable-objects/job/generated";
import type { JobObject } from "../../../durable-objects/job/object";
import type { TenantObject } from "../../../durable-objects/tenant";

/**
 * The namespaces typed by their classes, for tests that reach inside an object (`runInDurableObject`)
 * or call it directly; the Worker types its stubs by the RPC surfaces in src/contracts/rpc.ts.
 */
export const jobObjects = env.JOBS as unknown as DurableObjectNamespace<JobObject>;
export const schedulerObjects = env.BACKEND_SCHEDULERS as unknown as DurableObjectNamespace<BackendScheduler>;
export const tenantObjects = env.TENANT_STATE as unknown as DurableObjectNamespace<TenantObject>;

/**
 * Rewrites a job's stored rows as time passing or an older version would have left them; the
 * instance then forgets the row it holds in memory, as a new instance (after a restart) would.
 */
export const editJob = (id: string, ...queries: [string, ...SqlStorageValue[]][]) =>
  runInDurableObject(jobObjects.get(jobObjects.idFromName(id)), (obj: JobObject, state) => {
    for (const [query, ...bindings] of queries) state.storage.sql.exec(query, ...bindings);
    (obj as unknown as { ledger: JobLedger }).ledger.forget();
  });

/** What a new instance after a restart knows of the job's call in flight: nothing (its memory is the instance's). */
export const forgetCallInFlight = (id: string) =>
  runInDurableObject(jobObjects.get(jobObjects.idFromName(id)), (obj: JobObject) => {
    (obj as unknown as { room: { memory: { inflight: number | undefined } } }).room.memory.inflight = undefined;
  });

/**
 * What a restart while a job's outputs were written leaves: its generation's one image in R2 at
 * `prefix`, kept as attempt 1's (its slot given back with the backend's answer or not), and no call
 * in flight; the job's next alarm resumes the writes. Answers the job's object.
 */
export async function generatedBeforeRestart(id: string, prefix: string, slotReturned = false) {
  const image = { key: `${prefix}/image_0.png`, content_type: "image/png", width: 64, height: 64 };
  await env.IMAGES.put(image.key, new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]));
  const stub = jobObjects.get(jobObjects.idFromName(id));
  await runInDurableObject(stub, (_o: JobObject, state) => keepGenerated(state.storage, 1, { images: [image], slotReturned }));
  await forgetCallInFlight(id);
  return stub;
}

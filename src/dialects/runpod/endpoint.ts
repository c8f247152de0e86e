/** RunPod's endpoint-wide calls, `/health` and `/purge-queue`, over one tenant's jobs at one endpoint. */
import type { Env } from "../../env";
import { isOk, jobStub } from "../../jobs/client";
import { endpointBackends } from "../../jobs/endpoints";
import type { JobStatus } from "../../schemas/job";
import { endpointCounts, endpointLiveJobs } from "../../jobs/tenant-runs";
import type { EndpointJob } from "../../contracts/tenant";
import { runShard } from "../../tenant-shards";
import { schedulerStub } from "../../schedulers";

/**
 * The live jobs a `/health` asks their objects about: the oldest, those likely running; newer ones
 * count as last seen (queued), and every job's end reaches its shard's row (the index's end report).
 */
const MAX_CONFIRMED = 1000;
/** `/purge-queue` reads each shard a page at a time, at most this many pages: 16 × 500 × 40 rows. */
const PURGE_PAGE = 500;
const MAX_PURGE_PAGES = 40;
/** Cancels sent at once. */
const CANCELS_AT_ONCE = 200;

const oldestFirst = (a: EndpointJob, b: EndpointJob) => a.created_at - b.created_at || (a.run_id < b.run_id ? -1 : a.run_id > b.run_id ? 1 : 0);

/** A live row's status as its job says now, noted in its shard when it moved. */
async function confirmed(env: Env, tenant: string, row: EndpointJob): Promise<EndpointJob> {
  const res = await jobStub(env, row.run_id).get(tenant);
  const status: JobStatus | "gone" = isOk(res) ? res.snapshot.job.status : "gone";
  if (status !== row.status) await runShard(env, tenant, row.run_id).noteEndpointJob(row.run_id, status === "gone" ? "canceled" : status);
  return { ...row, status };
}

export async function endpointHealth(env: Env, tenant: string, endpoint: string) {
  const [counts, pages] = await Promise.all([endpointCounts(env, tenant, endpoint), endpointLiveJobs(env, tenant, endpoint, [], MAX_CONFIRMED)]);
  const asked = pages.flat().sort(oldestFirst).slice(0, MAX_CONFIRMED);
  const now = await Promise.all(asked.map((row) => confirmed(env, tenant, row)));
  // Each status as last seen, the asked jobs moved from where they were seen to where they are.
  const count = (status: string) => (counts.get(status)?.n ?? 0) - asked.filter((j) => j.status === status).length + now.filter((j) => j.status === status).length;
  const retried = [...counts.values()].reduce((n, c) => n + c.retried, 0);
  // The workers are the backends that can run this endpoint's jobs: their slots, busy or free.
  const backends = endpointBackends(env, endpoint);
  const loads = await Promise.all(
    backends.map(async (b) => {
      const s = await schedulerStub(env, b.name)
        .status()
        .catch(() => undefined);
      return { max: b.max_concurrency, active: s?.active ?? 0, open: s?.open_until != null && s.open_until > Date.now() };
    }),
  );
  const running = loads.reduce((n, l) => n + Math.min(l.active, l.max), 0);
  const idle = loads.reduce((n, l) => n + (l.open ? 0 : Math.max(0, l.max - l.active)), 0);
  return {
    jobs: { completed: count("succeeded"), failed: count("failed"), inProgress: count("running"), inQueue: count("queued"), retried },
    workers: { idle, initializing: 0, ready: idle, running, throttled: 0, unhealthy: loads.filter((l) => l.open).length },
  };
}

/** Cancels the queued ones, every one however many: jobs already running go on, as RunPod's purge leaves them. */
export async function purgeEndpointQueue(env: Env, tenant: string, endpoint: string) {
  const cancel = async (j: EndpointJob) => {
    const res = await jobStub(env, j.run_id).cancel(tenant, true);
    if (isOk(res)) await runShard(env, tenant, j.run_id).noteEndpointJob(j.run_id, "canceled");
    return isOk(res);
  };
  let removed = 0;
  const after: (EndpointJob | null)[] = [];
  for (let page = 0; page < MAX_PURGE_PAGES; page++) {
    const lists = await endpointLiveJobs(env, tenant, endpoint, after, PURGE_PAGE);
    lists.forEach((list, n) => (after[n] = list.at(-1) ?? after[n] ?? null));
    // Running ones stay: a job seen running never goes back to the queue but by /retry, which makes it queued here too.
    const queued = lists.flat().filter((j) => j.status === "queued");
    for (let i = 0; i < queued.length; i += CANCELS_AT_ONCE) removed += (await Promise.all(queued.slice(i, i + CANCELS_AT_ONCE).map(cancel))).filter(Boolean).length;
    if (lists.every((list) => list.length < PURGE_PAGE)) break;
  }
  return { removed, status: "completed" };
}

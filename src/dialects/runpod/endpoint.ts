/** RunPod's endpoint-wide calls, `/health` and `/purge-queue`, over one tenant's jobs at one endpoint. */
import type { Env } from "../../env";
import { isOk, jobStub } from "../../jobs/client";
import { endpointBackends } from "../../jobs/endpoints";
import type { JobStatus } from "../../schemas/job";
import { endpointJobs } from "../../jobs/tenant-runs";
import { runShard } from "../../tenant-shards";
import { schedulerStub } from "../../schedulers";

/** The jobs looked at: the endpoint's most recent of the last day. */
const MAX_JOBS = 1000;
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);

/** Each job's current status; the tenant's shards remember terminal ones, so only live jobs are asked. */
async function currentStatuses(env: Env, tenant: string, endpoint: string): Promise<{ run_id: string; status: string; retried: number }[]> {
  const rows = await endpointJobs(env, tenant, endpoint, MAX_JOBS);
  return Promise.all(
    rows.map(async (row) => {
      if (TERMINAL.has(row.status)) return row;
      const res = await jobStub(env, row.run_id).get(tenant);
      const status: JobStatus | "gone" = isOk(res) ? res.snapshot.job.status : "gone";
      if (status !== row.status) await runShard(env, tenant, row.run_id).noteEndpointJob(row.run_id, status === "gone" ? "canceled" : status);
      return { ...row, status };
    }),
  );
}

export async function endpointHealth(env: Env, tenant: string, endpoint: string) {
  const jobs = await currentStatuses(env, tenant, endpoint);
  const count = (status: string) => jobs.filter((j) => j.status === status).length;
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
    jobs: { completed: count("succeeded"), failed: count("failed"), inProgress: count("running"), inQueue: count("queued"), retried: jobs.reduce((n, j) => n + j.retried, 0) },
    workers: { idle, initializing: 0, ready: idle, running, throttled: 0, unhealthy: loads.filter((l) => l.open).length },
  };
}

/** Cancels the queued ones; jobs already running go on, as RunPod's purge leaves them. */
export async function purgeEndpointQueue(env: Env, tenant: string, endpoint: string) {
  const queued = (await currentStatuses(env, tenant, endpoint)).filter((j) => j.status === "queued");
  const results = await Promise.all(
    queued.map(async (j) => {
      const res = await jobStub(env, j.run_id).cancel(tenant, true);
      if (isOk(res)) await runShard(env, tenant, j.run_id).noteEndpointJob(j.run_id, "canceled");
      return isOk(res);
    }),
  );
  return { removed: results.filter(Boolean).length, status: "completed" };
}

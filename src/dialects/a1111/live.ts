/**
 * A1111's progress, interrupt and skip for one tenant: they act on the jobs its synchronous
 * A1111 calls are waiting on (kept in the tenant's shards), never on anybody else's.
 */
import type { BackendProgress } from "../../backends/types";
import type { Env } from "../../env";
import { DEFAULT_TIMEOUT_S } from "../../schemas/job";
import { isOk, jobStub } from "../../jobs/client";
import { waitingRuns } from "../../jobs/tenant-runs";
import { runShard } from "../../tenant-shards";

/** A tenant's A1111 calls that one progress, interrupt or skip looks at. */
const MAX_WAITING_LISTED = 100;

const IDLE_STATE = { skipped: false, interrupted: false, stopping_generation: false, job: "", job_count: 0, job_timestamp: "0", job_no: 0, sampling_step: 0, sampling_steps: 0 };

export type A1111Progress = {
  progress: number;
  eta_relative: number;
  state: typeof IDLE_STATE;
  current_image: string | null;
  textinfo: string | null;
};

/** Marks `runId` as waited on by an A1111 call of `tenant` until `done` settles. */
export async function whileWaiting<T>(env: Env, tenant: string, runId: string, done: () => Promise<T>): Promise<T> {
  const stub = runShard(env, tenant, runId);
  // A1111 dialect jobs keep the default timeout_s: the mark outlives the job it is for.
  await stub.addWaiting(runId, DEFAULT_TIMEOUT_S * 1000);
  try {
    return await done();
  } finally {
    await stub.removeWaiting(runId).catch(() => undefined);
  }
}

async function waitedJobs(env: Env, tenant: string) {
  const ids = await waitingRuns(env, tenant, MAX_WAITING_LISTED);
  const states = await Promise.all(ids.map(async (id) => ({ id, res: await jobStub(env, id).liveProgress(tenant, { image: false }) })));
  return states.flatMap(({ id, res }) => (isOk(res) ? [{ id, status: res.status, progress: res.progress }] : []));
}

/** A1111's figures: it adds 0.01 so that nothing divides by zero, and clients rely on a running job being above 0. */
function shape(p: BackendProgress, image: string | null): A1111Progress {
  return {
    progress: Math.min(1, 0.01 + p.fraction),
    eta_relative: p.eta_s ?? 0,
    state: { ...IDLE_STATE, job: p.job, job_count: p.job_count, job_timestamp: p.job_timestamp, job_no: p.job_no, sampling_step: p.step, sampling_steps: p.steps },
    current_image: image,
    textinfo: p.textinfo,
  };
}

/**
 * `GET /sdapi/v1/progress` for the tenant: the oldest of its running A1111 calls as its backend
 * reports it (the preview only when not `skipCurrentImage`); while calls wait without figures,
 * `job_count` counts them; idle, A1111's zeros.
 */
export async function tenantProgress(env: Env, tenant: string, skipCurrentImage: boolean): Promise<A1111Progress> {
  const active = (await waitedJobs(env, tenant)).filter((j) => j.status === "queued" || j.status === "running");
  const live = active.find((j) => j.progress);
  if (live?.progress) {
    if (skipCurrentImage) return shape(live.progress, null);
    const again = await jobStub(env, live.id).liveProgress(tenant, { image: true });
    return isOk(again) && again.progress ? shape(again.progress, again.image) : shape(live.progress, null);
  }
  return { progress: 0, eta_relative: 0, state: { ...IDLE_STATE, job_count: active.length }, current_image: null, textinfo: active.length ? "Waiting..." : null };
}

/** `POST /sdapi/v1/interrupt`: cancels the tenant's running A1111 calls (the core cancel stops their backends). */
export async function interruptTenant(env: Env, tenant: string): Promise<number> {
  const running = (await waitedJobs(env, tenant)).filter((j) => j.status === "running");
  const results = await Promise.all(running.map((j) => jobStub(env, j.id).cancel(tenant)));
  return results.filter(isOk).length;
}

/** `POST /sdapi/v1/skip`: passed to the backends running the tenant's A1111 calls. */
export async function skipTenant(env: Env, tenant: string): Promise<void> {
  const running = (await waitedJobs(env, tenant)).filter((j) => j.status === "running");
  await Promise.all(running.map((j) => jobStub(env, j.id).skip(tenant)));
}

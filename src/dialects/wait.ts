/** How a dialect reads the job it created: as it is now, or once it ended (A1111, Cerebrium, RunPod's runsync). */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Env } from "../env";
import { EaselError } from "../errors";
import { isOk, jobStub } from "../jobs/client";
import type { Job, JobSnapshot } from "../jobs/results";
import { checkRunId } from "../jobs/run-id";
import { TERMINAL_STATUSES } from "../schemas/job";

/** A synchronous dialect waits at most this long, like a client library's own timeout. */
export const SYNC_WAIT_MS = 10 * 60_000;
/** One long-poll call; the job object caps each at a minute. */
const SLICE_MS = 30_000;

export interface WaitOptions {
  /** The client's request signal: a client that hangs up cancels its job, as nobody will read the images. */
  signal?: AbortSignal;
  /** Keeps that cancel running after the request is gone (`executionCtx.waitUntil`). */
  waitUntil?: (promise: Promise<unknown>) => void;
  maxMs?: number;
}

export const hasEnded = (job: Job): boolean => (TERMINAL_STATUSES as readonly string[]).includes(job.status);

/** The tenant's job by a client-given id; undefined for anything that is not one of its jobs (an id we did not mint names no Durable Object). */
export async function snapshotFor(env: Env, runId: string, tenant: string): Promise<JobSnapshot | undefined> {
  if (!(await checkRunId(env, runId))) return undefined;
  const res = await jobStub(env, runId).get(tenant, { full: true });
  return isOk(res) ? res.snapshot : undefined;
}

/**
 * Waits on the job object's long-poll (no sleeping loop) until the job ends or `maxMs` passes,
 * and answers the job as it then is.
 */
export async function waitForEnd(env: Env, runId: string, tenant: string, opts: WaitOptions = {}): Promise<JobSnapshot> {
  const stub = jobStub(env, runId);
  const cancel = () => {
    const canceled = stub.cancel(tenant).catch(() => undefined);
    opts.waitUntil?.(canceled);
  };
  const { signal } = opts;
  if (signal?.aborted) cancel();
  signal?.addEventListener("abort", cancel, { once: true });
  try {
    const until = Date.now() + (opts.maxMs ?? SYNC_WAIT_MS);
    let seq = 0;
    for (;;) {
      const res = await stub.waitForChange(tenant, seq, Math.max(1, Math.min(SLICE_MS, until - Date.now())), { full: true });
      if (!isOk(res)) throw new EaselError(404, "not_found", "job not found");
      if (res.terminal || Date.now() >= until) return res.snapshot;
      seq = res.events.at(-1)?.seq ?? seq;
    }
  } finally {
    signal?.removeEventListener("abort", cancel);
  }
}

/** The HTTP status a synchronous answer carries when its job did not succeed. */
export function failureStatus(job: Job): ContentfulStatusCode {
  if (job.status === "canceled") return 409;
  if (!hasEnded(job) || job.error?.code === "timeout") return 504;
  // The backend refused the request itself (its 400/422): the client's to fix.
  if (job.error?.code === "invalid_request") return 422;
  return 502;
}

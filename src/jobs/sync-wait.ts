/**
 * How a request waits for the job it created (A1111, Cerebrium, RunPod's runsync and status-sync):
 * bounded, on the job object's long-poll, and, for a synchronous call, a client that hangs up
 * cancels its job.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Env } from "../env";
import { configErrorFrom } from "../config";
import { EaselError } from "../errors";
import type { AppEnv } from "../middleware/auth";
import { TERMINAL_STATUSES } from "../schemas/job";
import { isOk, jobStub } from "./client";
import type { Job, JobSnapshot } from "./results";

/** A synchronous dialect waits at most this long, like a client library's own timeout. */
export const SYNC_WAIT_MS = 10 * 60_000;
/** One long-poll call; the job object caps each at a minute. */
const SLICE_MS = 30_000;
/** After a failed long-poll call, the wait before the next: doubling from the first, up to the last. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2_000;

/**
 * Whether a failed call is worth making again: not when the object is overloaded (asking again adds
 * to its load) nor when its own code threw (`remote`: it would throw again), as Cloudflare advises;
 * a reset (a deploy) or a lost connection is.
 */
const askAgain = (err: unknown): boolean => {
  const e = (typeof err === "object" && err !== null ? err : {}) as { overloaded?: unknown; remote?: unknown };
  return e.overloaded !== true && e.remote !== true;
};

export interface WaitOptions {
  /** The client's request signal: a client that hangs up cancels its job, as nobody will read the images. */
  signal?: AbortSignal;
  /** Keeps that cancel running after the request is gone (`executionCtx.waitUntil`). */
  waitUntil?: (promise: Promise<unknown>) => void;
  maxMs?: number;
}

export const hasEnded = (job: Job): boolean => (TERMINAL_STATUSES as readonly string[]).includes(job.status);

/**
 * Waits on the job object's long-poll (no sleeping loop) until the job ends or `maxMs` passes,
 * and answers the job as it then is. The long-poll is a read: a call the object could not answer
 * (reset by a deploy, its connection lost) is made again on a fresh stub, with a backoff, within
 * the same bound; the job goes on meanwhile, so the caller must not get a 500 and send it again.
 */
export async function waitForEnd(env: Env, runId: string, tenant: string, opts: WaitOptions = {}): Promise<JobSnapshot> {
  let stub = jobStub(env, runId);
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
    let backoff = RETRY_FIRST_MS;
    for (;;) {
      const res = await stub.waitForChange(tenant, seq, Math.max(1, Math.min(SLICE_MS, until - Date.now())), { full: true }).catch((err: unknown) => {
        // Not asked again, or the bound is spent: a 503 all the same (never a 500 its client would
        // answer by paying for the generation again), unless it is the operator's configuration.
        if (configErrorFrom(err)) throw err;
        if (!askAgain(err) || Date.now() + backoff >= until) throw new EaselError(503, "unavailable", "the job could not be read just now; it goes on, and its result is kept");
        return undefined;
      });
      if (res === undefined) {
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(RETRY_MAX_MS, backoff * 2);
        stub = jobStub(env, runId);
        continue;
      }
      backoff = RETRY_FIRST_MS;
      if (!isOk(res)) throw new EaselError(404, "not_found", "job not found");
      if (res.terminal || Date.now() >= until) return res.snapshot;
      seq = res.events.at(-1)?.seq ?? seq;
    }
  } finally {
    signal?.removeEventListener("abort", cancel);
  }
}

/** The job's deadline alarm may fire this late: a wait to its deadline lasts this much longer. */
const DEADLINE_SLACK_MS = 30_000;

/**
 * How long a call that answers only with the job's end waits for it (A1111's, whose clients set no
 * timeout): the job's own `timeout_s`, counted from its submission, by which it has ended.
 */
export const untilItsDeadline = (snapshot: JobSnapshot): number => snapshot.input.timeout_s * 1000 + DEADLINE_SLACK_MS;

/** A synchronous call's wait for its own job: at most `maxMs` (SYNC_WAIT_MS), and the caller hanging up cancels the job. */
export function syncWait(c: Context<AppEnv>, runId: string, maxMs = SYNC_WAIT_MS): Promise<JobSnapshot> {
  return waitForEnd(c.env, runId, c.var.tenant, { signal: c.req.raw.signal, waitUntil: (p) => c.executionCtx.waitUntil(p), maxMs });
}

/** The HTTP status a synchronous answer carries when its job did not succeed. */
export function failureStatus(job: Job): ContentfulStatusCode {
  if (job.status === "canceled") return 409;
  if (!hasEnded(job) || job.error?.code === "timeout") return 504;
  // The backend refused the request itself (its 400/422): the client's to fix.
  if (job.error?.code === "invalid_request") return 422;
  return 502;
}

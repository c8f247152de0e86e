import type { JobObject } from "../../durable-objects/job/object";
import type { Env } from "../env";
import { EaselError } from "../errors";
import type { Failure } from "./results";

/**
 * The job object's RPC surface, typed by the class itself: its results carry free-form JSON
 * (`unknown`), which the generated stub types cannot express, while structured clone carries it fine.
 */
export type JobApi = Pick<JobObject, "create" | "get" | "events" | "waitForChange" | "deliveries" | "cancel" | "retry" | "redeliver" | "wake" | "backendCallback" | "liveProgress" | "skip" | "warm">;

export const jobStub = (env: Env, runId: string): JobApi => env.JOBS.get(env.JOBS.idFromName(runId)) as unknown as JobApi;

export const isOk = <R extends { ok: boolean }>(result: R): result is Extract<R, { ok: true }> => result.ok;

/** Maps a Durable Object's result union onto the contract's statuses. */
export function unwrap<R extends { ok: boolean }>(result: R): Extract<R, { ok: true }> {
  if (isOk(result)) return result;
  const failure = result as unknown as Failure;
  throw new EaselError(failure.code === "not_found" ? 404 : 409, failure.code, failure.message);
}

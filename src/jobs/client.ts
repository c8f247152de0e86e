import { rpc, type JobRpc } from "../contracts/rpc";
import type { Env } from "../env";
import { EaselError } from "../errors";
import type { Failure } from "./results";

export const jobStub = (env: Env, runId: string): JobRpc => rpc<JobRpc>(env.JOBS, runId);

export const isOk = <R extends { ok: boolean }>(result: R): result is Extract<R, { ok: true }> => result.ok;

/** Maps a Durable Object's result union onto the contract's statuses. */
export function unwrap<R extends { ok: boolean }>(result: R): Extract<R, { ok: true }> {
  if (isOk(result)) return result;
  const failure = result as unknown as Failure;
  throw new EaselError(failure.code === "not_found" ? 404 : 409, failure.code, failure.message);
}

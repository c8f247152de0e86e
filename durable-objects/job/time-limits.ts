/**
 * The job's two time limits, kept as one deadline (the row's `deadline_at`, from which the job's
 * one alarm is set): `timeout_s` from submission (or from a RunPod retry), and `run_timeout_s` from
 * the start, queue time not counted. Whichever comes first ends the job with `timeout`.
 */
import type { StoredJobInput } from "../../src/jobs/spec";

/** The deadline once the job starts at `now`: the run limit's end, when it comes before the deadline it had. */
export const deadlineOnStart = (input: StoredJobInput, deadlineAt: number, now: number): number =>
  input.run_timeout_s === undefined ? deadlineAt : Math.min(deadlineAt, now + input.run_timeout_s * 1000);

/** The `timeout` error's message: which of the two limits ran out. */
export function timeoutMessage(input: StoredJobInput, row: { started_at: number | null; deadline_at: number }): string {
  const run = input.run_timeout_s;
  if (run !== undefined && row.started_at !== null && row.started_at + run * 1000 <= row.deadline_at) return `the job did not finish within ${run} s of starting to run`;
  return `the job did not finish within ${input.timeout_s} s`;
}

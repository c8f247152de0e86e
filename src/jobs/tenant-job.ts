/** A job by the id a client gave, as its tenant may see it. */
import type { Env } from "../env";
import { isOk, jobStub } from "./client";
import type { JobSnapshot } from "./results";
import { checkRunId } from "./run-id";

/** The tenant's job by a client-given id; undefined for anything that is not one of its jobs (an id we did not mint names no Durable Object). */
export async function snapshotFor(env: Env, runId: string, tenant: string): Promise<JobSnapshot | undefined> {
  if (!(await checkRunId(env, runId))) return undefined;
  const res = await jobStub(env, runId).get(tenant, { full: true });
  return isOk(res) ? res.snapshot : undefined;
}

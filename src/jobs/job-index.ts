import type { IndexRow } from "../contracts/tenant";
import type { Env } from "../env";
import { TERMINAL_STATUSES, type Job } from "../schemas/job";
import { tenantStub } from "../tenants";
import { isOk, jobStub } from "./client";

/**
 * Reads an indexed job from its own object, the source of truth, and corrects the tenant's index
 * on the way: a missed end is recorded, and a row whose job was never created (intake stopped
 * half-way) is removed once old enough not to be a submit under way. Undefined when there is no such job.
 */
export async function readIndexed(env: Env, tenant: string, row: IndexRow): Promise<Job | undefined> {
  const res = await jobStub(env, row.id).get(tenant);
  if (!isOk(res)) {
    await tenantStub(env, tenant).dropMissing(row.id);
    return undefined;
  }
  const job = res.snapshot.job;
  // The index keeps active (queued or running) or the final status: only an end it missed is news.
  if (job.status !== row.status && TERMINAL_STATUSES.some((t) => t === job.status)) await tenantStub(env, tenant).setStatus({ ...row, status: job.status });
  return job;
}

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { snapshotFor } from "../../../src/jobs/tenant-job";
import { randomId } from "../../../src/lib/crypto";
import { hangingJobs } from "../support/jobs";

/** A job on the backend that never answers: it stays running until canceled. */
const hangingJob = hangingJobs();

describe("a job by a client-given id", () => {
  it("finds only the tenant's own jobs, by well-formed ids", async () => {
    const id = await hangingJob();
    expect((await snapshotFor(env, id, "acme"))?.job.id).toBe(id);
    expect(await snapshotFor(env, id, "globex")).toBeUndefined();
    expect(await snapshotFor(env, "not-a-run-id", "acme")).toBeUndefined();
    // Well formed once, not minted here: no job.
    expect(await snapshotFor(env, randomId("run"), "acme")).toBeUndefined();
  });
});

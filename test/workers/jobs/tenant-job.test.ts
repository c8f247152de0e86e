import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { jobStub } from "../../../src/jobs/client";
import { mintRunId } from "../../../src/jobs/run-id";
import { snapshotFor } from "../../../src/jobs/tenant-job";
import { randomId } from "../../../src/lib/crypto";
import { hangingJobInput } from "../support/jobs";

const created: string[] = [];

afterEach(async () => {
  for (const id of created.splice(0)) await jobStub(env, id).cancel("acme");
});

/** A job on the backend that never answers: it stays running until canceled. */
async function hangingJob(): Promise<string> {
  const id = await mintRunId(env);
  created.push(id);
  await jobStub(env, id).create(hangingJobInput(id, { dialect: "a1111" }));
  return id;
}

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

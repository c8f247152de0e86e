import { env } from "cloudflare:workers";
import { afterEach } from "vitest";
import { jobStub } from "../../../src/jobs/client";
import { mintRunId } from "../../../src/jobs/run-id";
import type { CreateJob } from "../../../src/jobs/spec";

/**
 * A job pinned to the test backend that never answers, so it stays queued or running until the
 * test acts (cancels it, moves its deadline...).
 */
export function hangingJobInput(id: string, over: Partial<CreateJob> = {}): CreateJob {
  return {
    id,
    tenant: "acme",
    backend: "hang",
    spec: { type: "img2img", prompt: "a cat", negative_prompt: "", strength: 0.7, steps: 4, guidance_scale: 7, width: 64, height: 64, samples: 1, seed: 7 },
    webhook_events: ["job.succeeded", "job.failed", "job.canceled"],
    dialect: "v1",
    output_prefix: `outputs/${id}`,
    public_base_url: "http://gateway.test",
    ...over,
  };
}

/**
 * `hangingJob()` for a test file: a minted run id, a hanging `dialect` job created under it, and
 * every such job canceled after each test, so none holds a connection into the next.
 */
export function hangingJobs(dialect: CreateJob["dialect"] = "a1111"): () => Promise<string> {
  const created: string[] = [];
  afterEach(async () => {
    for (const id of created.splice(0)) await jobStub(env, id).cancel("acme");
  });
  return async () => {
    const id = await mintRunId(env);
    created.push(id);
    await jobStub(env, id).create(hangingJobInput(id, { dialect }));
    return id;
  };
}

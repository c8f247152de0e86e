import { env } from "cloudflare:workers";
import { afterEach, inject } from "vitest";
import { jobStub } from "../../../src/jobs/client";
import { mintRunId } from "../../../src/jobs/run-id";
import { randomId } from "../../../src/lib/crypto";
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
 * For a test file: every job id passed through the returned function is canceled after each test,
 * so none holds a connection to the hanging backend into the next.
 */
function canceledAfterEach(): (id: string) => string {
  const created: string[] = [];
  afterEach(async () => {
    for (const id of created.splice(0)) await jobStub(env, id).cancel("acme");
  });
  return (id) => {
    created.push(id);
    return id;
  };
}

/** `hangingJob()` for a test file: a minted run id and a hanging `dialect` job created under it (canceled after each test). */
export function hangingJobs(dialect: CreateJob["dialect"] = "a1111"): () => Promise<string> {
  const track = canceledAfterEach();
  return async () => {
    const id = track(await mintRunId(env));
    await jobStub(env, id).create(hangingJobInput(id, { dialect }));
    return id;
  };
}

/** How often the hanging backend was called at `path`. */
export const hangingCalls = async (path: string) => Number(await (await fetch(`${inject("hangingBackendUrl")}/_calls?path=${encodeURIComponent(path)}`)).text());

/** Fresh run ids for a test file (its storage is shared between its tests); each job made under one is canceled after its test. */
export function runIds(): () => string {
  const track = canceledAfterEach();
  return () => track(randomId("run"));
}

/** Waits (bounded) until the job has ended, through the same long-poll dialects use. */
export async function settled(id: string) {
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    const res = await jobStub(env, id).waitForChange("acme", Number.MAX_SAFE_INTEGER, 5_000);
    if (res.ok && res.terminal) return res.snapshot.job;
  }
  throw new Error(`job ${id} did not end`);
}

/** Waits (bounded) until the job runs; its events name what happened instead. */
export async function running(id: string) {
  const until = Date.now() + 3_000;
  while (Date.now() < until) {
    const res = await jobStub(env, id).get("acme");
    if (res.ok && res.snapshot.job.status === "running") return;
    await new Promise((r) => setTimeout(r, 20));
  }
  const events = await jobStub(env, id).events("acme");
  throw new Error(`job ${id} never started: ${JSON.stringify(events)}`);
}

/**
 * An SD-on-EKS job writing its outputs to the stand-in S3 store's `bucket` (global-setup: `flaky`,
 * `held`), running, its call under way on the backend that never answers; answers its R2 place.
 */
export async function runningS3Job(id: string, bucket: string): Promise<string> {
  const prefix = `tenants/acme/output/${id}`;
  await jobStub(env, id).create(
    hangingJobInput(id, {
      dialect: "eks",
      dialect_data: { id_task: id, runtime: "sdruntime", context: "", version: "v1alpha2", tasktype: "image-to-image" },
      output_prefix: prefix,
      s3_output: { bucket, prefix: `output/${id}`, stem: `${id}-ab12` },
    }),
  );
  await running(id);
  return prefix;
}

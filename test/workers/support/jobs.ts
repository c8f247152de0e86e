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

/** How often the hanging backend was called at `path`. */
export const hangingCalls = async (path: string) => Number(await (await fetch(`${inject("hangingBackendUrl")}/_calls?path=${encodeURIComponent(path)}`)).text());

/**
 * Fresh run ids for a test file (its storage is shared between its tests); each job made under
 * one is canceled after its test, so none holds a connection to the hanging backend into the next.
 */
export function runIds(): () => string {
  const created: string[] = [];
  afterEach(async () => {
    for (const id of created.splice(0)) await jobStub(env, id).cancel("acme");
  });
  return () => {
    const id = randomId("run");
    created.push(id);
    return id;
  };
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

import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { failureStatus, hasEnded, snapshotFor, waitForEnd } from "../../../src/dialects/wait";
import { jobStub } from "../../../src/jobs/client";
import { mintRunId } from "../../../src/jobs/run-id";
import { randomId } from "../../../src/lib/crypto";
import { hangingJobInput } from "../support/jobs";
import { call, snapshot } from "./support";

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

describe("waiting for a dialect's job", () => {
  it("answers the job as it is once the bound has passed", async () => {
    const id = await hangingJob();
    const started = Date.now();
    const latest = await waitForEnd(env, id, "acme", { maxMs: 300 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(hasEnded(latest.job)).toBe(false);
    expect(failureStatus(latest.job)).toBe(504);
  });

  it("cancels the job when the client's signal aborts, keeping the cancel alive with waitUntil", async () => {
    const id = await hangingJob();
    const hangUp = new AbortController();
    const kept: Promise<unknown>[] = [];
    const waiting = waitForEnd(env, id, "acme", { signal: hangUp.signal, waitUntil: (p) => kept.push(p) });
    setTimeout(() => hangUp.abort(), 100);
    const ended = await waiting;
    expect(ended.job.status).toBe("canceled");
    expect(kept).toHaveLength(1);
  });

  it("finds only the tenant's own jobs, by well-formed ids", async () => {
    const id = await hangingJob();
    expect((await snapshotFor(env, id, "acme"))?.job.id).toBe(id);
    expect(await snapshotFor(env, id, "globex")).toBeUndefined();
    expect(await snapshotFor(env, "not-a-run-id", "acme")).toBeUndefined();
    // Well formed once, not minted here: no job.
    expect(await snapshotFor(env, randomId("run"), "acme")).toBeUndefined();
  });

  it("gives an ended job that did not succeed the status a synchronous answer carries", () => {
    expect(failureStatus(snapshot({ status: "canceled" }).job)).toBe(409);
    expect(failureStatus(snapshot({ status: "failed", error: { code: "timeout", message: "" } }).job)).toBe(504);
    expect(failureStatus(snapshot({ status: "failed", error: { code: "invalid_request", message: "" } }).job)).toBe(422);
    expect(failureStatus(snapshot({ status: "failed", error: { code: "backend_failed", message: "" } }).job)).toBe(502);
  });
});

describe("the dialects in the Worker's OpenAPI document", () => {
  it("lists every dialect route", async () => {
    const doc = (await (await call("/openapi.json")).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/sdapi/v1/txt2img",
        "/sdapi/v1/img2img",
        "/sdapi/v1/sd-models",
        "/sdapi/v1/options",
        "/sdapi/v1/samplers",
        "/api/v3/img2img",
        "/api/v3/text2img",
        "/api/v3/fetch/{id}",
        "/cerebrium/predict",
        "/runpod/run",
        "/runpod/runsync",
        "/runpod/status/{id}",
        "/runpod/cancel/{id}",
        "/eks/v1/tasks",
        "/eks/v1/tasks/{id_task}",
      ]),
    );
  });
});

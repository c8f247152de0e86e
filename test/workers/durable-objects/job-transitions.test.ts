import { env } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { jobStub } from "../../../src/jobs/client";
import { runIds, runningS3Job } from "../support/jobs";
import { generatedBeforeRestart } from "../support/objects";

const newRunId = runIds();
const standIn = inject("hangingBackendUrl");

/** The stand-in S3 store (global-setup): bucket `held` takes images at once and holds each manifest's PUT until released. */
const manifest = (id: string) => `/held/output/${id}/${id}-ab12.out`;
const heldPuts = async (id: string) => Number(await (await fetch(`${standIn}/_held?path=${encodeURIComponent(manifest(id))}`)).text());
const release = (id: string, one: "oldest" | "newest") => fetch(`${standIn}/_release?path=${encodeURIComponent(manifest(id))}&one=${one}`, { method: "POST" }).then((r) => r.text());
const storedManifest = async (id: string) => JSON.parse(await (await fetch(`${standIn}/_stored?path=${encodeURIComponent(manifest(id))}`)).text()) as { parameters: { status?: number; error_msg: string } };

async function until(what: () => Promise<boolean>, ms = 5_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) if (await what()) return true;
  return false;
}

/**
 * An SD-on-EKS job writing to the `held` bucket whose generation is done, its image in R2 and kept
 * as the attempt's: the next alarm writes its outputs (as after a restart during the writes).
 */
async function generatedTask(id: string) {
  return generatedBeforeRestart(id, await runningS3Job(id, "held"));
}

describe("two ends of a job racing, each writing its manifest", () => {
  it("leave the manifest of the end that won last: a cancel's `.out` landing after the success committed is put right", { timeout: 30_000 }, async () => {
    const id = newRunId();
    const stub = await generatedTask(id);
    // The cancel writes its manifest first; the outputs' writes start while that PUT is on its way.
    const canceling = jobStub(env, id).cancel("acme");
    expect(await until(async () => (await heldPuts(id)) === 1)).toBe(true);
    await runDurableObjectAlarm(stub);
    expect(await until(async () => (await heldPuts(id)) === 2)).toBe(true);
    // The success's manifest lands, the job succeeds; then the cancel's lands over it.
    await release(id, "newest");
    expect(await until(async () => {
      const res = await jobStub(env, id).get("acme");
      return res.ok && res.snapshot.job.status === "succeeded";
    })).toBe(true);
    await release(id, "oldest");
    expect(await canceling).toMatchObject({ ok: false, code: "conflict" });
    // A manifest put back after the cancel's is let through too.
    if (await until(async () => (await heldPuts(id)) === 1, 3_000)) await release(id, "oldest");
    const out = await storedManifest(id);
    expect(out.parameters.status).toBeUndefined();
    expect(out.parameters.error_msg).toBe("");
  });
});

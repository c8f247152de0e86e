import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { keepGenerated } from "../../../durable-objects/job/generated";
import type { JobObject } from "../../../durable-objects/job/object";
import { jobStub } from "../../../src/jobs/client";
import { hangingJobInput, runIds, running } from "../support/jobs";
import { forgetCallInFlight, jobObjects } from "../support/objects";

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
  const prefix = `tenants/acme/output/${id}`;
  await jobStub(env, id).create(
    hangingJobInput(id, {
      dialect: "eks",
      dialect_data: { id_task: id, runtime: "sdruntime", context: "", version: "v1alpha2", tasktype: "image-to-image" },
      output_prefix: prefix,
      s3_output: { bucket: "held", prefix: `output/${id}`, stem: `${id}-ab12` },
    }),
  );
  await running(id);
  const image = { key: `${prefix}/image_0.png`, content_type: "image/png", width: 64, height: 64 };
  await env.IMAGES.put(image.key, new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]));
  const stub = jobObjects.get(jobObjects.idFromName(id));
  await runInDurableObject(stub, (_o: JobObject, state) => keepGenerated(state.storage, 1, { images: [image], slotReturned: false }));
  await forgetCallInFlight(id);
  return stub;
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

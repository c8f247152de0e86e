import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { keepGenerated } from "../../../durable-objects/job/generated";
import type { JobObject } from "../../../durable-objects/job/object";
import { jobStub } from "../../../src/jobs/client";
import type { Job } from "../../../src/jobs/results";
import { hangingCalls, hangingJobInput, runIds, running } from "../support/jobs";
import { forgetCallInFlight, jobObjects } from "../support/objects";

const newRunId = runIds();

describe("a generation whose images were being written to S3 when a restart came", () => {
  it("has its writes resumed by the new instance, the generation not run again", { timeout: 20_000 }, async () => {
    const id = newRunId();
    const prefix = `tenants/acme/output/${id}`;
    await jobStub(env, id).create(
      hangingJobInput(id, {
        dialect: "eks",
        dialect_data: { id_task: id, runtime: "sdruntime", context: "", version: "v1alpha2", tasktype: "image-to-image" },
        output_prefix: prefix,
        s3_output: { bucket: "flaky", prefix: `output/${id}`, stem: `${id}-ab12` },
      }),
    );
    await running(id);
    const generations = await hangingCalls("/sdapi/v1/img2img");
    // What a restart during the writes leaves: the image in R2, kept as the attempt's, and no call in flight.
    const image = { key: `${prefix}/image_0.png`, content_type: "image/png", width: 64, height: 64 };
    await env.IMAGES.put(image.key, new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]));
    const stub = jobObjects.get(jobObjects.idFromName(id));
    await runInDurableObject(stub, (_o: JobObject, state) => keepGenerated(state.storage, 1, [image]));
    await forgetCallInFlight(id);
    await runDurableObjectAlarm(stub);
    let job: Job | undefined;
    for (let i = 0; i < 100; i++) {
      const res = await jobStub(env, id).get("acme");
      job = res.ok ? res.snapshot.job : undefined;
      if (job?.status !== "running") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(job).toMatchObject({ status: "succeeded" });
    expect(job?.output).toHaveLength(1);
    expect(await hangingCalls("/sdapi/v1/img2img")).toBe(generations);
    expect(await hangingCalls(`/flaky/output/${id}/${id}-ab12-1.png`)).toBeGreaterThan(0);
    expect(await hangingCalls(`/flaky/output/${id}/${id}-ab12.out`)).toBeGreaterThan(0);
    const events = await jobStub(env, id).events("acme");
    expect(events.ok && events.events.filter((e) => e.type === "attempt.started")).toHaveLength(1);
  });
});

import { describe, expect, inject, it } from "vitest";
import { streamItemProgress } from "../../../src/backends/runpod-progress";
import { RunPodAdapter, runpodImagesAt, runpodOutcome } from "../../../src/backends/runpod";
import { BackendSchema } from "../../../src/config/schema";
import { answerOf, memoryStore } from "./support";

const img = btoa("png-bytes");
const outcome = async (json: unknown, samples: number, upscale = false) => runpodOutcome(await answerOf(json, runpodImagesAt(upscale)), samples, upscale);

describe("RunPod status translation", () => {
  it("keeps a queued or running job pending", async () => {
    expect(await outcome({ id: "j1", status: "IN_QUEUE" }, 1)).toMatchObject({ kind: "pending", externalId: "j1" });
    expect(await outcome({ id: "j1", status: "IN_PROGRESS" }, 1)).toMatchObject({ kind: "pending" });
  });

  it("takes the A1111 response in output as the images", async () => {
    const out = await outcome({ id: "j1", status: "COMPLETED", output: { images: [img, img], parameters: {}, info: "{}" } }, 2);
    expect(out.kind).toBe("done");
  });

  it("sees through failure in disguise: an error envelope in a COMPLETED output, a JSON-string error", async () => {
    expect(await outcome({ id: "j1", status: "COMPLETED", output: { error: "OutOfMemoryError", errors: "CUDA out of memory" } }, 1)).toMatchObject({
      kind: "failed",
      failure: { code: "out_of_memory", retryable: true },
    });
    const stringError = JSON.stringify({ error_type: "RuntimeError", error_message: "CUDA out of memory. Tried to allocate 2 GiB" });
    expect(await outcome({ id: "j1", status: "FAILED", error: stringError }, 1)).toMatchObject({
      kind: "failed",
      failure: { code: "out_of_memory", message: "the RunPod worker ran out of GPU memory", detail: "CUDA out of memory. Tried to allocate 2 GiB" },
    });
    expect(await outcome({ id: "j1", status: "FAILED", error: "OutOfMemoryError", output: { errors: "CUDA out of memory" } }, 1)).toMatchObject({
      kind: "failed",
      failure: { code: "out_of_memory", detail: "OutOfMemoryError: CUDA out of memory" },
    });
    expect(await outcome({ id: "j1", status: "FAILED", error: "handler crashed" }, 1)).toMatchObject({ kind: "failed", failure: { code: "backend_failed", message: "the RunPod job failed", detail: "handler crashed" } });
    expect(await outcome({ id: "j1", status: "COMPLETED", output: { images: [] } }, 1)).toMatchObject({ kind: "failed" });
  });

  it("maps TIMED_OUT and an unasked CANCELLED to retryable failures", async () => {
    expect(await outcome({ id: "j1", status: "TIMED_OUT" }, 1)).toMatchObject({ kind: "failed", failure: { code: "timeout", retryable: true } });
    expect(await outcome({ id: "j1", status: "CANCELLED" }, 1)).toMatchObject({ kind: "failed", failure: { retryable: true } });
    expect(await outcome(undefined, 1)).toMatchObject({ kind: "failed" });
  });

  it("reads a streamed item as progress: a fraction, a progress object, or A1111's own progress", async () => {
    expect(streamItemProgress(0.25)).toMatchObject({ fraction: 0.25, step: 0, steps: 0, eta_s: null });
    expect(streamItemProgress({ progress: 0.5, step: 10, steps: 20, eta: 3 })).toMatchObject({ fraction: 0.5, step: 10, steps: 20, eta_s: 3 });
    expect(streamItemProgress({ progress: 0.4, eta_relative: 2, state: { sampling_step: 8, sampling_steps: 20, job_count: 1 } })).toMatchObject({ fraction: 0.4, step: 8, steps: 20, eta_s: 2 });
    expect(streamItemProgress({ images: ["..."] })).toBeUndefined();
    expect(streamItemProgress(3)).toBeUndefined();
  });

  it("reads an upscale's COMPLETED output as the worker's extras answer", async () => {
    const done = await outcome({ id: "j", status: "COMPLETED", output: { html_info: "<p></p>", image: btoa("png") } }, 1, true);
    expect(done).toMatchObject({ kind: "done", images: [{ key: "mem/0" }] });
    expect(await outcome({ id: "j", status: "COMPLETED", output: { images: [btoa("png")] } }, 1, true)).toMatchObject({ kind: "failed" });
  });
});

describe("RunPod status polls", () => {
  const adapter = (url: string) => new RunPodAdapter(BackendSchema.parse({ name: "rp", kind: "runpod", url }));

  it("takes a status call that hangs or cannot connect for no verdict: the job may well be running", async () => {
    // A hung call cut short by its signal is not a canceled job.
    const hung = await adapter(inject("hangingBackendUrl")).poll("job-1", { samples: 1, upscale: false, signal: AbortSignal.timeout(100), images: memoryStore() });
    expect(hung).toMatchObject({ kind: "failed", failure: { code: "backend_unavailable", retryable: true } });
    const refused = await adapter("http://127.0.0.1:9").poll("job-1", { samples: 1, upscale: false, signal: AbortSignal.timeout(5_000), images: memoryStore() });
    expect(refused).toMatchObject({ kind: "failed", failure: { code: "backend_unavailable" } });
  });
});

/** The simulator's RunPod endpoint running worker-comfyui: its 5.x and 4.x outputs and its errors. */
import { describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { pngSize } from "./support/client";
import { txt2img, type Graph, useComfySimulator } from "./support/comfyui";

const comfy = useComfySimulator();

describe("gpu-simulator: worker-comfyui on RunPod", () => {
  it("runs a workflow from /run to COMPLETED with 5.x base64 images, one per batch element", async () => {
    const input = { workflow: txt2img("rp", (g) => ((g["5"] as Graph[string]).inputs.batch_size = 2)) };
    const run = (await (await comfy.api.post("/v2/comfy-ep/run", { input })).json()) as { id: string; status: string };
    expect(run.status).toBe("IN_QUEUE");
    let job: { status: string; output?: { images: { filename: string; type: string; data: string }[] } } = { status: "" };
    for (let i = 0; i < 100 && job.status !== "COMPLETED"; i++) {
      await new Promise((r) => setTimeout(r, 50));
      job = (await (await fetch(`${comfy.sim.url}/v2/comfy-ep/status/${run.id}`)).json()) as typeof job;
    }
    expect(job.status).toBe("COMPLETED");
    expect(job.output?.images.map((i) => [i.filename, i.type])).toEqual([
      ["rp_00001_.png", "base64"],
      ["rp_00002_.png", "base64"],
    ]);
    expect(pngSize(Buffer.from(job.output?.images[0]?.data ?? "", "base64"))).toEqual({ width: 64, height: 48 });
  });

  it("answers s3_url links on a -s3 endpoint and the 4.x form on a -v4 one, and hands input images to LoadImage", async () => {
    const input = { workflow: txt2img("forms") };
    const s3 = (await (await comfy.api.post("/v2/comfy-ep-s3/runsync", { input })).json()) as { output: { images: { type: string; data: string }[] } };
    expect(s3.output.images[0]?.type).toBe("s3_url");
    expect(pngSize(new Uint8Array(await (await fetch(s3.output.images[0]?.data ?? "")).arrayBuffer()))).toEqual({ width: 64, height: 48 });

    const v4 = (await (await comfy.api.post("/v2/comfy-v4/runsync", { input })).json()) as { output: { status: string; message: string } };
    expect(v4.output.status).toBe("success");
    expect(pngSize(Buffer.from(v4.output.message, "base64"))).toEqual({ width: 64, height: 48 });

    const withImage = { workflow: { "1": { class_type: "LoadImage", inputs: { image: "mine.png" } }, "2": { class_type: "SaveImage", inputs: { images: ["1", 0], filename_prefix: "echo" } } }, images: [{ name: "mine.png", image: `data:image/png;base64,${Buffer.from(encodePng(12, 10, () => [1, 2, 3])).toString("base64")}` }] };
    const echoed = (await (await comfy.api.post("/v2/comfy-ep/runsync", { input: withImage })).json()) as { output: { images: { data: string }[] } };
    expect(pngSize(Buffer.from(echoed.output.images[0]?.data ?? "", "base64"))).toEqual({ width: 12, height: 10 });
  });

  it("fails a job as handler.py does: a bad workflow, no workflow, an execution error", async () => {
    const bad = (await (await comfy.api.post("/v2/comfy-ep/runsync", { input: { workflow: txt2img("rp", (g) => ((g["4"] as Graph[string]).inputs.ckpt_name = "nope.safetensors")) } })).json()) as { status: string; error: string };
    expect(bad.status).toBe("FAILED");
    expect(bad.error).toContain("Workflow validation failed:\n• Node 4");
    expect(bad.error).toContain("Available checkpoint models: v1-5-pruned-emaonly.safetensors, chilloutmix-Ni.safetensors");
    const none = (await (await comfy.api.post("/v2/comfy-ep/runsync", { input: {} })).json()) as { status: string; error: string };
    expect(none).toMatchObject({ status: "FAILED", error: "Missing 'workflow' parameter" });
    await comfy.sim.config({ runpod: { errorRate: 1 } });
    try {
      const failed = (await (await comfy.api.post("/v2/comfy-ep/runsync", { input: { workflow: txt2img("boom") } })).json()) as { status: string; error: string; output?: { details: string[] } };
      expect(failed).toMatchObject({ status: "FAILED", error: "Job processing failed" });
      expect(failed.output?.details[0]).toMatch(/^Workflow execution error: Node Type: KSampler, Node ID: 3, Message: /);
    } finally {
      await comfy.sim.config({ runpod: { errorRate: 0 } });
    }
  });

  it("stops the run on a cancel", async () => {
    await comfy.sim.config({ runpod: { msPerImage: 5000 } });
    try {
      const run = (await (await comfy.api.post("/v2/comfy-ep/run", { input: { workflow: txt2img("cancel") } })).json()) as { id: string };
      let status = "";
      for (let i = 0; i < 100 && status !== "IN_PROGRESS"; i++) {
        await new Promise((r) => setTimeout(r, 20));
        status = ((await (await fetch(`${comfy.sim.url}/v2/comfy-ep/status/${run.id}`)).json()) as { status: string }).status;
      }
      expect(status).toBe("IN_PROGRESS");
      expect(((await (await comfy.api.post(`/v2/comfy-ep/cancel/${run.id}`, {})).json()) as { status: string }).status).toBe("CANCELLED");
      let running = 1;
      for (let i = 0; i < 100 && running > 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        running = (await comfy.sim.stats()).byKind.runpod.current;
      }
      // Stopped well before its 5 s of sampling would have ended.
      expect(running).toBe(0);
      expect(((await (await fetch(`${comfy.sim.url}/v2/comfy-ep/status/${run.id}`)).json()) as { status: string }).status).toBe("CANCELLED");
    } finally {
      await comfy.sim.config({ runpod: { msPerImage: 0 } });
    }
  });
});

import { describe, expect, it } from "vitest";
import { comfyPlan, type ComfyPlan } from "../../../src/backends/comfyui-plan";
import type { GenerationSpec } from "../../../src/jobs/spec";

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 8, 0, 0, 0, 8]);
const spec = (over: Partial<GenerationSpec> = {}): GenerationSpec => ({ type: "txt2img", prompt: "p", negative_prompt: "", strength: 0.7, steps: 20, guidance_scale: 7, width: 512, height: 512, samples: 2, seed: 1, ...over });
const listed = { checkpoints: ["v1-5-pruned-emaonly.safetensors", "sdxl.safetensors"], upscaleModels: [], listed: true };
const plan = (over: Partial<GenerationSpec>, extra: { initImage?: Uint8Array; inputImages?: { name: string; bytes: Uint8Array }[] } = {}, choices = listed) =>
  comfyPlan({ spec: spec(over), taskId: "run_a-1", ...extra }, choices);
const ckpt = (p: ReturnType<typeof plan>) => Object.values((p as ComfyPlan).prompt).find((n) => n.class_type === "CheckpointLoaderSimple")?.inputs.ckpt_name;

describe("what a job becomes at a ComfyUI backend", () => {
  it("loads the job's model by the backend's exact file name, or the first it lists when none is asked", () => {
    expect(ckpt(plan({ model: "v1-5-pruned-emaonly" }))).toBe("v1-5-pruned-emaonly.safetensors");
    expect(ckpt(plan({ model: "SDXL.safetensors [abc123]" }))).toBe("sdxl.safetensors");
    expect(ckpt(plan({}))).toBe("v1-5-pruned-emaonly.safetensors");
    expect(plan({}, {}, { checkpoints: [], upscaleModels: [], listed: false })).toMatchObject({ code: "invalid_request", retryable: true });
  });

  it("leaves a job to another backend when this one lacks its model, sampler or upscaler", () => {
    expect(plan({ model: "other" })).toMatchObject({ code: "invalid_request", retryable: true });
    expect(plan({ sampler: "Restart" })).toEqual({ code: "invalid_request", message: 'ComfyUI has no sampler like "Restart"', retryable: true });
    expect(plan({ type: "upscale", upscale: { upscaler: "SwinIR 4x" } }, { initImage: PNG })).toMatchObject({ code: "invalid_request", retryable: true });
  });

  it("uploads the init image under a name of the attempt's own, which the graph loads", () => {
    const p = plan({ type: "img2img" }, { initImage: PNG }) as ComfyPlan;
    expect(p.uploads.map((u) => u.name)).toEqual(["run_a-1-init.png"]);
    expect(Object.values(p.prompt).find((n) => n.class_type === "LoadImage")?.inputs.image).toBe("run_a-1-init.png");
    expect(p).toMatchObject({ outputs: 2, samplers: expect.arrayContaining([expect.any(String)]) });
  });

  it("runs a workflow as given but for its input images' names, which become the attempt's own", () => {
    const workflow = {
      "1": { class_type: "LoadImage", inputs: { image: "cat.png" } },
      "2": { class_type: "KSampler", inputs: { seed: 123456789, steps: 4 } },
      "3": { class_type: "LoadImage", inputs: { image: "not-uploaded.png" } },
    };
    const p = plan({ type: "workflow", workflow }, { inputImages: [{ name: "cat.png", bytes: PNG }] }) as ComfyPlan;
    expect(p.uploads.map((u) => u.name)).toEqual(["run_a-1-cat.png"]);
    expect(p.prompt["1"]?.inputs.image).toBe("run_a-1-cat.png");
    expect(p.prompt["2"]).toEqual(workflow["2"]);
    expect(p.prompt["3"]).toEqual(workflow["3"]);
    expect(p.samplers).toEqual(["2"]);
    expect(p.outputs).toBeUndefined();
  });

  it("queues a SaveImageWebsocket as a SaveImage of the attempt's own prefix, so its images are files the history names; other nodes as given", () => {
    const workflow = {
      "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
      ws: { class_type: "SaveImageWebsocket", inputs: { images: ["8", 0] }, _meta: { title: "SaveImageWebsocket" } },
      ws2: { class_type: "SaveImageWebsocket", inputs: { images: ["8", 0] } },
    };
    const p = plan({ type: "workflow", workflow }) as ComfyPlan;
    expect(p.prompt.ws).toEqual({ class_type: "SaveImage", inputs: { images: ["8", 0], filename_prefix: "easel-run_a-1-ws0" }, _meta: { title: "SaveImageWebsocket" } });
    // One prefix each: a worker-comfyui answer names files, and the prefix tells their node.
    expect(p.prompt.ws2?.inputs.filename_prefix).toBe("easel-run_a-1-ws1");
    expect(p.prompt["8"]).toEqual(workflow["8"]);
  });
});

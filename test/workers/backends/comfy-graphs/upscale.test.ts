import { describe, expect, it } from "vitest";
import { upscaleGraph, upscalerFor } from "../../../../src/backends/comfy-graphs/upscale";
import { graphProblems, nodesOf, upscaleModelChoices } from "./object-info";

const build = (upscaler: { method: string } | { model: string }) => upscaleGraph({ image: "run_x-1-init.png", width: 1024, height: 768, upscaler, filenamePrefix: "p" });

describe("upscale graph", () => {
  it("resamples to the job's exact size with a plain method (Lanczos unless asked otherwise)", () => {
    const graph = build(upscalerFor(undefined, upscaleModelChoices) ?? { method: "" });
    expect(graphProblems(graph.prompt)).toEqual([]);
    expect(nodesOf(graph.prompt, "ImageScale").map(([, n]) => n.inputs)).toMatchObject([{ upscale_method: "lanczos", width: 1024, height: 768 }]);
    expect(graph.saves).toHaveLength(1);
    expect(upscalerFor("Nearest", [])).toEqual({ method: "nearest-exact" });
  });

  it("runs an upscale model the backend lists, then scales to the exact size", () => {
    const upscaler = upscalerFor("realesrgan_x4plus", upscaleModelChoices);
    expect(upscaler).toEqual({ model: "RealESRGAN_x4plus.pth" });
    const graph = build(upscaler ?? { method: "" });
    expect(graphProblems(graph.prompt)).toEqual([]);
    expect(nodesOf(graph.prompt, "UpscaleModelLoader").map(([, n]) => n.inputs.model_name)).toEqual(["RealESRGAN_x4plus.pth"]);
    expect(nodesOf(graph.prompt, "ImageUpscaleWithModel")).toHaveLength(1);
    expect(nodesOf(graph.prompt, "ImageScale").map(([, n]) => [n.inputs.width, n.inputs.height])).toEqual([[1024, 768]]);
  });

  it("has no way to run an upscaler the backend lacks", () => {
    expect(upscalerFor("R-ESRGAN 4x+ Anime6B", upscaleModelChoices)).toBeUndefined();
  });
});

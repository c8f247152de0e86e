import { describe, expect, it } from "vitest";
import { img2imgGraph } from "../../../../src/backends/comfy-graphs/img2img";
import { checkpointChoices, graphProblems, nodesOf } from "./object-info";
import { spec } from "./support";

const build = (samples: number) =>
  img2imgGraph({ spec: spec({ type: "img2img", samples, strength: 0.35 }), ckpt: checkpointChoices[0] ?? "", sampler: { sampler_name: "euler", scheduler: "normal" }, filenamePrefix: "p", image: "run_x-1-init.png" });

describe("img2img graph", () => {
  it("is a graph ComfyUI accepts, by its node definitions", () => {
    expect(graphProblems(build(2).prompt)).toEqual([]);
  });

  it("encodes the uploaded init image at the job's size and samples it with denoise = strength, seed + n", () => {
    const graph = build(2);
    expect(nodesOf(graph.prompt, "LoadImage").map(([, n]) => n.inputs.image)).toEqual(["run_x-1-init.png"]);
    expect(nodesOf(graph.prompt, "ImageScale").map(([, n]) => n.inputs)).toMatchObject([{ width: 512, height: 384 }]);
    const [encode] = nodesOf(graph.prompt, "VAEEncode");
    const samplers = nodesOf(graph.prompt, "KSampler").map(([, n]) => n.inputs);
    expect(samplers.map((s) => [s.seed, s.denoise, s.latent_image])).toEqual([
      [42, 0.35, [encode?.[0], 0]],
      [43, 0.35, [encode?.[0], 0]],
    ]);
    expect(nodesOf(graph.prompt, "EmptyLatentImage")).toEqual([]);
  });
});

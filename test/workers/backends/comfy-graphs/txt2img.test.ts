import { describe, expect, it } from "vitest";
import { comfySampler } from "../../../../src/backends/comfy-graphs/samplers";
import { txt2imgGraph } from "../../../../src/backends/comfy-graphs/txt2img";
import { checkpointChoices, graphProblems, nodesOf } from "./object-info";
import { spec } from "./support";

const build = (samples: number, sampler = "DPM++ 2M Karras") =>
  txt2imgGraph({ spec: spec({ samples, sampler }), ckpt: checkpointChoices[0] ?? "", sampler: comfySampler(sampler) ?? { sampler_name: "", scheduler: "" }, filenamePrefix: "easel-run_x-1" });

describe("txt2img graph", () => {
  it("is a graph ComfyUI accepts, by its node definitions", () => {
    for (const samples of [1, 4]) expect(graphProblems(build(samples).prompt)).toEqual([]);
  });

  it("runs one KSampler per sample, seed + n with a batch of one, sharing the checkpoint and the encodings", () => {
    const graph = build(3);
    const samplers = nodesOf(graph.prompt, "KSampler").map(([, n]) => n.inputs);
    expect(samplers.map((s) => s.seed)).toEqual([42, 43, 44]);
    expect(nodesOf(graph.prompt, "CheckpointLoaderSimple")).toHaveLength(1);
    expect(nodesOf(graph.prompt, "CLIPTextEncode").map(([, n]) => n.inputs.text)).toEqual(["a cat wizard", "blurry"]);
    expect(nodesOf(graph.prompt, "EmptyLatentImage").map(([, n]) => n.inputs)).toEqual([{ width: 512, height: 384, batch_size: 1 }]);
    expect(new Set(samplers.map((s) => JSON.stringify([s.positive, s.negative, s.model, s.latent_image]))).size).toBe(1);
    expect(samplers[0]).toMatchObject({ steps: 20, cfg: 7.5, denoise: 1, sampler_name: "dpmpp_2m", scheduler: "karras" });
    expect(graph.samplers).toEqual(nodesOf(graph.prompt, "KSampler").map(([id]) => id));
  });

  it("saves sample n's image in the n-th SaveImage by node id, each under the attempt's own prefix", () => {
    const graph = build(2);
    const saves = nodesOf(graph.prompt, "SaveImage");
    expect(saves.map(([id]) => id)).toEqual(graph.saves);
    expect(graph.saves.map(Number)).toEqual([...graph.saves.map(Number)].sort((a, b) => a - b));
    // Follow each save back to its sampler: the n-th save holds seed + n.
    const seedOfSave = (id: string) => {
      const decode = graph.prompt[(graph.prompt[id]?.inputs.images as [string, number])[0]];
      return graph.prompt[(decode?.inputs.samples as [string, number])[0]]?.inputs.seed;
    };
    expect(graph.saves.map(seedOfSave)).toEqual([42, 43]);
    expect(saves.map(([, n]) => n.inputs.filename_prefix)).toEqual(["easel-run_x-1_0", "easel-run_x-1_1"]);
  });
});

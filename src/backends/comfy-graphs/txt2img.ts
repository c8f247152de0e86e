/** A txt2img job as a ComfyUI graph: an empty latent of the job's size, sampled from pure noise. */
import { out } from "./graph";
import type { BuiltGraph } from "./graph";
import { samplingGraph, type SamplingInputs } from "./sampling";

export function txt2imgGraph(inputs: SamplingInputs): BuiltGraph {
  const { width, height } = inputs.spec;
  return samplingGraph(inputs, (g) => out(g.add("EmptyLatentImage", { width, height, batch_size: 1 })), 1);
}

/**
 * An img2img job as a ComfyUI graph: the uploaded init image encoded by the checkpoint's VAE, then
 * sampled with `denoise` = the job's strength. The image is scaled to the job's size first, as
 * A1111 resizes its init image to `width` x `height`.
 */
import { out, type BuiltGraph } from "./graph";
import { samplingGraph, VAE, type SamplingInputs } from "./sampling";

export function img2imgGraph(inputs: SamplingInputs & { image: string }): BuiltGraph {
  const { width, height, strength } = inputs.spec;
  return samplingGraph(
    inputs,
    (g, checkpoint) => {
      const loaded = g.add("LoadImage", { image: inputs.image });
      const sized = g.add("ImageScale", { image: out(loaded), upscale_method: "lanczos", width, height, crop: "center" });
      return out(g.add("VAEEncode", { pixels: out(sized), vae: out(checkpoint, VAE) }));
    },
    strength,
  );
}

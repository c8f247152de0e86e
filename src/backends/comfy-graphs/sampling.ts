/**
 * The part txt2img and img2img share: the checkpoint, the two text encodings, and one KSampler
 * per sample (seed + n, a batch of one: a ComfyUI batch draws all its noise from one seed, so its
 * images could not be made again one by one), each decoded and saved by its own nodes.
 */
import type { GenerationSpec } from "../../jobs/spec";
import type { ComfySampler } from "./samplers";
import { GraphBuilder, out, type BuiltGraph, type Link } from "./graph";

export interface SamplingInputs {
  spec: GenerationSpec;
  /** The checkpoint as the backend names it (its exact `ckpt_name` choice). */
  ckpt: string;
  sampler: ComfySampler;
  /** Unique per attempt, so no two attempts' files clash on the backend. */
  filenamePrefix: string;
}

/** CheckpointLoaderSimple's outputs. */
export const MODEL = 0;
export const CLIP = 1;
export const VAE = 2;

/**
 * Adds the samplers and what follows them to a graph whose latent comes from `latent` (which may
 * read the checkpoint added first: its id is `checkpoint`).
 */
export function samplingGraph(inputs: SamplingInputs, latentOf: (g: GraphBuilder, checkpoint: string) => Link, denoise: number): BuiltGraph {
  const { spec } = inputs;
  const g = new GraphBuilder();
  const checkpoint = g.add("CheckpointLoaderSimple", { ckpt_name: inputs.ckpt });
  const positive = g.add("CLIPTextEncode", { text: spec.prompt, clip: out(checkpoint, CLIP) });
  const negative = g.add("CLIPTextEncode", { text: spec.negative_prompt, clip: out(checkpoint, CLIP) });
  const latent = latentOf(g, checkpoint);
  const samplers: string[] = [];
  const saves: string[] = [];
  for (let n = 0; n < spec.samples; n++) {
    const sampler = g.add("KSampler", {
      model: out(checkpoint, MODEL),
      positive: out(positive),
      negative: out(negative),
      latent_image: latent,
      seed: spec.seed + n,
      steps: spec.steps,
      cfg: spec.guidance_scale,
      sampler_name: inputs.sampler.sampler_name,
      scheduler: inputs.sampler.scheduler,
      denoise,
    });
    const decoded = g.add("VAEDecode", { samples: out(sampler), vae: out(checkpoint, VAE) });
    saves.push(g.add("SaveImage", { images: out(decoded), filename_prefix: `${inputs.filenamePrefix}_${n}` }));
    samplers.push(sampler);
  }
  return { prompt: g.prompt, samplers, saves };
}

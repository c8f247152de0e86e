import type { GenerationSpec } from "../../../../src/jobs/spec";

export const spec = (over: Partial<GenerationSpec> = {}): GenerationSpec => ({
  type: "txt2img",
  prompt: "a cat wizard",
  negative_prompt: "blurry",
  strength: 0.6,
  steps: 20,
  guidance_scale: 7.5,
  width: 512,
  height: 384,
  samples: 1,
  seed: 42,
  ...over,
});

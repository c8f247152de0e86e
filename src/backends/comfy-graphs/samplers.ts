/**
 * A1111 sampler names as ComfyUI's `sampler_name` + `scheduler` (comfy/samplers.py KSAMPLER_NAMES,
 * SAMPLER_NAMES, SCHEDULER_HANDLERS). A1111 names a noise schedule by a suffix ("DPM++ 2M Karras");
 * ComfyUI takes it as a separate input.
 */
export interface ComfySampler {
  sampler_name: string;
  scheduler: string;
}

/** A1111's base names (no schedule suffix), lower-cased. */
const BASE: Record<string, ComfySampler> = {
  "euler a": { sampler_name: "euler_ancestral", scheduler: "normal" },
  euler: { sampler_name: "euler", scheduler: "normal" },
  lms: { sampler_name: "lms", scheduler: "normal" },
  heun: { sampler_name: "heun", scheduler: "normal" },
  dpm2: { sampler_name: "dpm_2", scheduler: "normal" },
  "dpm2 a": { sampler_name: "dpm_2_ancestral", scheduler: "normal" },
  "dpm++ 2s a": { sampler_name: "dpmpp_2s_ancestral", scheduler: "normal" },
  "dpm++ 2m": { sampler_name: "dpmpp_2m", scheduler: "normal" },
  "dpm++ sde": { sampler_name: "dpmpp_sde", scheduler: "normal" },
  "dpm++ 2m sde": { sampler_name: "dpmpp_2m_sde", scheduler: "normal" },
  "dpm++ 2m sde heun": { sampler_name: "dpmpp_2m_sde_heun", scheduler: "normal" },
  "dpm++ 3m sde": { sampler_name: "dpmpp_3m_sde", scheduler: "normal" },
  "dpm fast": { sampler_name: "dpm_fast", scheduler: "normal" },
  "dpm adaptive": { sampler_name: "dpm_adaptive", scheduler: "normal" },
  lcm: { sampler_name: "lcm", scheduler: "normal" },
  ddpm: { sampler_name: "ddpm", scheduler: "normal" },
  // A1111's DDIM steps uniformly over the model's timesteps, which is ComfyUI's ddim_uniform.
  ddim: { sampler_name: "ddim", scheduler: "ddim_uniform" },
  unipc: { sampler_name: "uni_pc", scheduler: "normal" },
};

/** A1111's schedule suffixes and ComfyUI's scheduler for each. */
const SCHEDULES: [suffix: string, scheduler: string][] = [
  [" karras", "karras"],
  [" exponential", "exponential"],
  [" sgm uniform", "sgm_uniform"],
];

/** What a job without a sampler runs with: A1111's API default, "Euler a". */
export const DEFAULT_SAMPLER: ComfySampler = { sampler_name: "euler_ancestral", scheduler: "normal" };

/** The ComfyUI sampler and scheduler for an A1111 sampler name, or undefined when ComfyUI has none like it. */
export function comfySampler(name: string | undefined): ComfySampler | undefined {
  if (name === undefined) return DEFAULT_SAMPLER;
  const key = name.trim().toLowerCase().replace(/\s+/g, " ");
  const plain = BASE[key];
  if (plain) return plain;
  for (const [suffix, scheduler] of SCHEDULES) {
    const base = key.endsWith(suffix) ? BASE[key.slice(0, -suffix.length)] : undefined;
    // DDIM's own schedule is fixed; "DDIM Karras" is not a sampler A1111 has.
    if (base && base.sampler_name !== "ddim") return { sampler_name: base.sampler_name, scheduler };
  }
  return undefined;
}

/**
 * A1111's read-only lists and flags, in the shapes its API answers (modules/api/models.py), as a
 * small install with a couple of extras would report them.
 */
import { MODELS, SAMPLERS, SCRIPTS } from "./a1111";

const ROOT = "/stable-diffusion-webui";

const SCHEDULERS = [
  { name: "automatic", label: "Automatic", aliases: null, default_rho: -1, need_inner_model: false },
  { name: "karras", label: "Karras", aliases: null, default_rho: 7, need_inner_model: false },
  { name: "exponential", label: "Exponential", aliases: null, default_rho: -1, need_inner_model: false },
  { name: "uniform", label: "Uniform", aliases: null, default_rho: -1, need_inner_model: true },
];

export const UPSCALERS = [
  { name: "None", model_name: null, model_path: null, model_url: null, scale: 4 },
  { name: "Lanczos", model_name: null, model_path: null, model_url: null, scale: 4 },
  { name: "Nearest", model_name: null, model_path: null, model_url: null, scale: 4 },
  { name: "R-ESRGAN 4x+", model_name: "R-ESRGAN 4x+", model_path: "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth", model_url: null, scale: 4 },
];

const LISTS: Record<string, unknown> = {
  "sd-models": MODELS,
  samplers: SAMPLERS,
  schedulers: SCHEDULERS,
  upscalers: UPSCALERS,
  "latent-upscale-modes": ["Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)", "Latent (nearest)", "Latent (nearest-exact)"].map((name) => ({ name })),
  "sd-vae": [{ model_name: "vae-ft-mse-840000-ema-pruned.safetensors", filename: `${ROOT}/models/VAE/vae-ft-mse-840000-ema-pruned.safetensors` }],
  loras: [{ name: "add_detail", alias: "add_detail", path: `${ROOT}/models/Lora/add_detail.safetensors`, metadata: {} }],
  hypernetworks: [],
  embeddings: {
    loaded: { EasyNegative: { step: null, sd_checkpoint: null, sd_checkpoint_name: null, shape: 768, vectors: 8 } },
    skipped: {},
  },
  "face-restorers": [
    { name: "CodeFormer", cmd_dir: `${ROOT}/models/Codeformer` },
    { name: "GFPGAN", cmd_dir: null },
  ],
  "realesrgan-models": [{ name: "R-ESRGAN 4x+", path: "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth", scale: 4 }],
  "prompt-styles": [{ name: "cinematic", prompt: "{prompt}, cinematic lighting", negative_prompt: "cartoon" }],
  scripts: SCRIPTS,
  "script-info": [
    { name: "x/y/z plot", is_alwayson: false, is_img2img: false, args: [] },
    { name: "refiner", is_alwayson: true, is_img2img: false, args: [] },
    { name: "refiner", is_alwayson: true, is_img2img: true, args: [] },
  ],
  "cmd-flags": { api: true, nowebui: true, listen: true, port: 7860, xformers: false, medvram: false, lowvram: false, no_half: false, api_auth: null, data_dir: ROOT },
  memory: {
    ram: { free: 54_000_000_000, used: 10_000_000_000, total: 64_000_000_000 },
    cuda: { system: { free: 20_000_000_000, used: 4_000_000_000, total: 24_000_000_000 }, active: { current: 2_000_000_000, peak: 4_000_000_000 }, allocated: { current: 2_000_000_000, peak: 4_000_000_000 }, reserved: { current: 3_000_000_000, peak: 5_000_000_000 }, inactive: { current: 0, peak: 0 }, events: { retries: 0, oom: 0 } },
  },
};

/** The answer to `GET /sdapi/v1/<name>`, or undefined when it is not one of these lists. */
export const listAnswer = (name: string): unknown => (Object.hasOwn(LISTS, name) ? LISTS[name] : undefined);

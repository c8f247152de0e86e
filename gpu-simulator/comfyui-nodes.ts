/**
 * The ComfyUI node classes the simulator knows, with the INPUT_TYPES and outputs ComfyUI's
 * `nodes.py` (and `comfy_extras/nodes_upscale_model.py`) declare, rendered as `/object_info` does.
 */
import { basename } from "node:path";
import { MODELS } from "./a1111";

type Options = Record<string, unknown>;
/** `[type, options?]`: a type name, or the list of allowed values of a combo. */
export type InputSpec = [string | string[], Options?] | [string | string[]];
export type InputGroups = { required: Record<string, InputSpec>; optional?: Record<string, InputSpec>; hidden?: Record<string, string> };

interface NodeClass {
  input: (lists: ComfyLists) => InputGroups;
  output: string[];
  outputName?: string[];
  displayName: string;
  description: string;
  category: string;
  outputNode?: boolean;
  pythonModule?: string;
  /** A node of ComfyUI's V3 API (`comfy_api/latest`): `/object_info` writes its combos as `["COMBO", {options}]`. */
  v3?: boolean;
}

/** What a ComfyUI install has on its disk: the combo choices that depend on it. */
export interface ComfyLists {
  checkpoints: string[];
  upscaleModels: string[];
  inputFiles: string[];
}

/** The simulator's checkpoints, the same models its A1111 lists, as ComfyUI names files. */
export const CHECKPOINTS = MODELS.map((m) => basename(m.filename));
/** Upscale models and their factor (a real model's factor is in its weights; here in its name). */
export const UPSCALE_MODELS: Record<string, number> = { "RealESRGAN_x4plus.pth": 4, "4x-UltraSharp.pth": 4, "RealESRGAN_x2plus.pth": 2 };

// comfy/samplers.py KSampler.SAMPLERS and SCHEDULERS.
export const SAMPLERS = [
  "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive",
  "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
  "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis", "res_multistep",
  "res_multistep_cfg_pp", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde",
  "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2",
];
export const SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic", "kl_optimal"];

const MAX_RESOLUTION = 16384;
const IMAGE_SCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"];
const SAVE_HIDDEN = { prompt: "PROMPT", extra_pnginfo: "EXTRA_PNGINFO" };

const sampling = (seedName: string): Record<string, InputSpec> => ({
  model: ["MODEL"],
  [seedName]: ["INT", { default: 0, min: 0, max: 0xffffffffffffffff, control_after_generate: true }],
  steps: ["INT", { default: 20, min: 1, max: 10000 }],
  cfg: ["FLOAT", { default: 8.0, min: 0.0, max: 100.0, step: 0.1, round: 0.01 }],
  sampler_name: [SAMPLERS],
  scheduler: [SCHEDULERS],
  positive: ["CONDITIONING"],
  negative: ["CONDITIONING"],
  latent_image: ["LATENT"],
});

export const NODES: Record<string, NodeClass> = {
  CheckpointLoaderSimple: {
    input: (l) => ({ required: { ckpt_name: [l.checkpoints, { tooltip: "The name of the checkpoint (model) to load." }] } }),
    output: ["MODEL", "CLIP", "VAE"],
    displayName: "Load Checkpoint",
    description: "Loads a diffusion model checkpoint, diffusion models are used to denoise latents.",
    category: "loaders",
  },
  CLIPTextEncode: {
    input: () => ({ required: { text: ["STRING", { multiline: true, dynamicPrompts: true, tooltip: "The text to be encoded." }], clip: ["CLIP", { tooltip: "The CLIP model used for encoding the text." }] } }),
    output: ["CONDITIONING"],
    displayName: "CLIP Text Encode (Prompt)",
    description: "Encodes a text prompt using a CLIP model into an embedding that can be used to guide the diffusion model towards generating specific images.",
    category: "conditioning",
  },
  EmptyLatentImage: {
    input: () => ({
      required: {
        width: ["INT", { default: 512, min: 16, max: MAX_RESOLUTION, step: 8, tooltip: "The width of the latent images in pixels." }],
        height: ["INT", { default: 512, min: 16, max: MAX_RESOLUTION, step: 8, tooltip: "The height of the latent images in pixels." }],
        batch_size: ["INT", { default: 1, min: 1, max: 4096, tooltip: "The number of latent images in the batch." }],
      },
    }),
    output: ["LATENT"],
    displayName: "Empty Latent Image",
    description: "Create a new batch of empty latent images to be denoised via sampling.",
    category: "latent",
  },
  KSampler: {
    input: () => ({ required: { ...sampling("seed"), denoise: ["FLOAT", { default: 1.0, min: 0.0, max: 1.0, step: 0.01 }] } }),
    output: ["LATENT"],
    displayName: "KSampler",
    description: "Uses the provided model, positive and negative conditioning to denoise the latent image.",
    category: "sampling",
  },
  KSamplerAdvanced: {
    input: () => {
      const { model, ...rest } = sampling("noise_seed");
      return {
        required: {
          model: model as InputSpec,
          add_noise: [["enable", "disable"]],
          ...rest,
          start_at_step: ["INT", { default: 0, min: 0, max: 10000 }],
          end_at_step: ["INT", { default: 10000, min: 0, max: 10000 }],
          return_with_leftover_noise: [["disable", "enable"]],
        },
      };
    },
    output: ["LATENT"],
    displayName: "KSampler (Advanced)",
    description: "",
    category: "sampling",
  },
  VAEDecode: {
    input: () => ({ required: { samples: ["LATENT", { tooltip: "The latent to be decoded." }], vae: ["VAE", { tooltip: "The VAE model used for decoding the latent." }] } }),
    output: ["IMAGE"],
    displayName: "VAE Decode",
    description: "Decodes latent images back into pixel space images.",
    category: "latent",
  },
  VAEEncode: { input: () => ({ required: { pixels: ["IMAGE"], vae: ["VAE"] } }), output: ["LATENT"], displayName: "VAE Encode", description: "", category: "latent" },
  LoadImage: {
    input: (l) => ({ required: { image: [[...l.inputFiles].sort(), { image_upload: true }] } }),
    output: ["IMAGE", "MASK"],
    displayName: "Load Image",
    description: "",
    category: "image",
  },
  SaveImage: {
    input: () => ({
      required: {
        images: ["IMAGE", { tooltip: "The images to save." }],
        filename_prefix: ["STRING", { default: "ComfyUI", tooltip: "The prefix for the file to save." }],
      },
      hidden: SAVE_HIDDEN,
    }),
    output: [],
    displayName: "Save Image",
    description: "Saves the input images to your ComfyUI output directory.",
    category: "image",
    outputNode: true,
  },
  // ComfyUI ships it in custom_nodes/websocket_image_save.py: the images go to the prompt's client as
  // binary frames, nothing is written and the history lists nothing for it.
  SaveImageWebsocket: {
    input: () => ({ required: { images: ["IMAGE"] } }),
    output: [],
    displayName: "SaveImageWebsocket",
    description: "",
    category: "api/image",
    outputNode: true,
    pythonModule: "custom_nodes.websocket_image_save",
  },
  PreviewImage: {
    input: () => ({ required: { images: ["IMAGE"] }, hidden: SAVE_HIDDEN }),
    output: [],
    displayName: "Preview Image",
    description: "Saves the input images to your ComfyUI output directory.",
    category: "image",
    outputNode: true,
  },
  ImageScale: {
    input: () => ({
      required: {
        image: ["IMAGE"],
        upscale_method: [IMAGE_SCALE_METHODS],
        width: ["INT", { default: 512, min: 0, max: MAX_RESOLUTION, step: 1 }],
        height: ["INT", { default: 512, min: 0, max: MAX_RESOLUTION, step: 1 }],
        crop: [["disabled", "center"]],
      },
    }),
    output: ["IMAGE"],
    displayName: "Upscale Image",
    description: "",
    category: "image/upscaling",
  },
  ImageScaleBy: {
    input: () => ({ required: { image: ["IMAGE"], upscale_method: [IMAGE_SCALE_METHODS], scale_by: ["FLOAT", { default: 1.0, min: 0.01, max: 8.0, step: 0.01 }] } }),
    output: ["IMAGE"],
    displayName: "Upscale Image By",
    description: "",
    category: "image/upscaling",
  },
  UpscaleModelLoader: {
    input: (l) => ({ required: { model_name: [l.upscaleModels, {}] } }),
    output: ["UPSCALE_MODEL"],
    displayName: "Load Upscale Model",
    description: "",
    category: "loaders",
    pythonModule: "comfy_extras.nodes_upscale_model",
    v3: true,
  },
  ImageUpscaleWithModel: {
    input: () => ({ required: { upscale_model: ["UPSCALE_MODEL", {}], image: ["IMAGE", {}] } }),
    output: ["IMAGE"],
    displayName: "Upscale Image (using Model)",
    description: "",
    category: "image/upscaling",
    pythonModule: "comfy_extras.nodes_upscale_model",
  },
  LatentUpscaleBy: {
    input: () => ({ required: { samples: ["LATENT"], upscale_method: [["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]], scale_by: ["FLOAT", { default: 1.5, min: 0.01, max: 8.0, step: 0.01 }] } }),
    output: ["LATENT"],
    displayName: "Upscale Latent By",
    description: "",
    category: "latent",
  },
};

/** A V3 node's inputs as `/object_info` shows them (`_io.py` `Combo.Input.as_dict`): a combo is `["COMBO", {multiselect, options}]`. */
function asV3(groups: InputGroups): InputGroups {
  const combos = (g: Record<string, InputSpec>): Record<string, InputSpec> =>
    Object.fromEntries(Object.entries(g).map(([k, [type, opts]]) => [k, Array.isArray(type) ? ["COMBO", { ...opts, multiselect: false, options: type }] : opts ? [type, opts] : [type]]));
  return { ...groups, required: combos(groups.required), ...(groups.optional ? { optional: combos(groups.optional) } : {}) };
}

/** One class as `GET /object_info` describes it (server.py `node_info`). */
export function nodeInfo(name: string, lists: ComfyLists): Record<string, unknown> | undefined {
  const n = NODES[name];
  if (!n) return undefined;
  const input = n.v3 ? asV3(n.input(lists)) : n.input(lists);
  return {
    input,
    input_order: Object.fromEntries(Object.entries(input).map(([group, fields]) => [group, Object.keys(fields as object)])),
    output: n.output,
    output_is_list: n.output.map(() => false),
    output_name: n.outputName ?? n.output,
    name,
    display_name: n.displayName,
    description: n.description,
    python_module: n.pythonModule ?? "nodes",
    category: n.category,
    output_node: n.outputNode === true,
  };
}

export const objectInfo = (lists: ComfyLists): Record<string, unknown> => Object.fromEntries(Object.keys(NODES).map((name) => [name, nodeInfo(name, lists)]));

/** ComfyUI's read-only routes: `/object_info`, `/models`, `/system_stats`, `/embeddings`, `/extensions`, `/features`. */
import { CHECKPOINTS, nodeInfo, objectInfo, UPSCALE_MODELS, type ComfyLists } from "./comfyui-nodes";

const FOLDERS: Record<string, string[]> = {
  checkpoints: CHECKPOINTS,
  upscale_models: Object.keys(UPSCALE_MODELS),
  embeddings: ["EasyNegative.safetensors"],
  loras: ["add_detail.safetensors"],
  vae: ["vae-ft-mse-840000-ema-pruned.safetensors"],
  clip: [],
  controlnet: [],
};

/** comfy_api/feature_flags.py's server features, answered on `/features` and to a socket's `feature_flags`. */
export const SERVER_FEATURES = { supports_preview_metadata: true, max_upload_size: 104_857_600 };

const SYSTEM_STATS = {
  system: {
    os: "posix",
    ram_total: 67_108_864_000,
    ram_free: 52_428_800_000,
    comfyui_version: "0.3.64",
    required_frontend_version: "1.27.10",
    installed_templates_version: "0.1.95",
    required_templates_version: "0.1.95",
    python_version: "3.12.3 (main, Aug 14 2025, 17:47:21) [GCC 13.3.0]",
    pytorch_version: "2.8.0+cu128",
    embedded_python: false,
    argv: ["main.py", "--listen", "0.0.0.0", "--port", "8188"],
  },
  devices: [{ name: "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync", type: "cuda", index: 0, vram_total: 25_386_352_640, vram_free: 24_012_079_104, torch_vram_total: 0, torch_vram_free: 0 }],
};

/** The answer to a GET of one of these paths, or undefined when it is none of them (`404` for an unknown model folder). */
export function listRoute(path: string, lists: ComfyLists): { status: number; body: unknown } | undefined {
  if (path === "/object_info") return { status: 200, body: objectInfo(lists) };
  const cls = /^\/object_info\/([^/]+)$/.exec(path)?.[1];
  if (cls !== undefined) {
    const name = decodeURIComponent(cls);
    const info = nodeInfo(name, lists);
    return { status: 200, body: info ? { [name]: info } : {} };
  }
  if (path === "/models") return { status: 200, body: Object.keys(FOLDERS) };
  const folder = /^\/models\/([^/]+)$/.exec(path)?.[1];
  if (folder !== undefined) {
    const files = FOLDERS[decodeURIComponent(folder)];
    return files ? { status: 200, body: files } : { status: 404, body: null };
  }
  if (path === "/system_stats") return { status: 200, body: SYSTEM_STATS };
  if (path === "/embeddings") return { status: 200, body: (FOLDERS.embeddings ?? []).map((f) => f.replace(/\.[^.]+$/, "")) };
  if (path === "/extensions") return { status: 200, body: [] };
  if (path === "/features") return { status: 200, body: SERVER_FEATURES };
  return undefined;
}

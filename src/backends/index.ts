import type { BackendConfig } from "../config";
import { A1111Adapter } from "./a1111";
import { CerebriumAdapter } from "./cerebrium";
import { ComfyUIAdapter } from "./comfyui";
import { RunPodAdapter } from "./runpod";
import { RunPodComfyUIAdapter } from "./runpod-comfyui";
import type { BackendAdapter } from "./types";

export function adapterFor(config: BackendConfig): BackendAdapter {
  switch (config.kind) {
    case "a1111":
      return new A1111Adapter(config);
    case "runpod":
      return new RunPodAdapter(config);
    case "cerebrium":
      return new CerebriumAdapter(config);
    case "comfyui":
      return new ComfyUIAdapter(config);
    case "runpod-comfyui":
      return new RunPodComfyUIAdapter(config);
  }
}

import type { BackendConfig } from "../config";
import { A1111Adapter } from "./a1111";
import { CerebriumAdapter } from "./cerebrium";
import { RunPodAdapter } from "./runpod";
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
    case "runpod-comfyui":
      // INTERFACE BRANCH ONLY: the comfyui helper replaces this with the adapters.
      throw new Error(`backend kind ${config.kind} is not built yet`);
  }
}

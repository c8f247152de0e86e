import type { BackendConfig } from "../config";
import { A1111Adapter } from "./a1111";
import type { BackendAdapter } from "./types";

export function adapterFor(config: BackendConfig): BackendAdapter {
  switch (config.kind) {
    case "a1111":
      return new A1111Adapter(config);
    case "runpod":
    case "cerebrium":
      return new A1111Adapter(config);
  }
}

import { describe, expect, it } from "vitest";
import { summarizeNodeErrors } from "../../../src/backends/comfyui-prompt";

describe("ComfyUI's refusal of a prompt", () => {
  it("summarises node_errors: each node's id, class and messages", () => {
    const body = {
      error: { type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation", details: "", extra_info: {} },
      node_errors: {
        "4": { errors: [{ type: "value_not_in_list", message: "Value not in list", details: "ckpt_name: 'nope.safetensors' not in [...]", extra_info: {} }], dependent_outputs: ["9"], class_type: "CheckpointLoaderSimple" },
      },
    };
    expect(summarizeNodeErrors(body)).toBe("Prompt outputs failed validation | node 4 (CheckpointLoaderSimple): Value not in list: ckpt_name: 'nope.safetensors' not in [...]");
    expect(summarizeNodeErrors({ error: { type: "missing_node_type", message: "Node 'Nope' not found", details: "Node ID '#7'" }, node_errors: {} })).toBe("Node 'Nope' not found: Node ID '#7'");
    expect(summarizeNodeErrors(undefined)).toBe("ComfyUI refused the prompt");
  });
});

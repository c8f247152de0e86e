import { describe, expect, it } from "vitest";
import { byNodeId, endOutcome, promptEnd, savedImages } from "../../../src/backends/comfyui-history";
import { BackendSchema } from "../../../src/config/schema";
import { memoryStore } from "./support";

const config = BackendSchema.parse({ name: "comfy", kind: "comfyui", url: "http://127.0.0.1:9" });
const img = (filename: string, type = "output", subfolder = "") => ({ filename, subfolder, type });

describe("ComfyUI history reading", () => {
  it("takes saved images in node-id order (10 after 9), then their order within the node, and never previews", () => {
    const outputs = { "10": { images: [img("c.png")] }, "9": { images: [img("a.png"), img("b.png", "output", "sub")] }, "12": { images: [img("p.png", "temp")] }, "3": { text: ["not an image"] } };
    expect(savedImages(outputs)).toEqual([
      { node: "9", filename: "a.png", subfolder: "" },
      { node: "9", filename: "b.png", subfolder: "sub" },
      { node: "10", filename: "c.png", subfolder: "" },
    ]);
    expect(["b", "10", "2", "a"].sort(byNodeId)).toEqual(["2", "10", "a", "b"]);
  });

  it("reads how a prompt ended from its status: success, a node's exception, an interrupt, or not yet", () => {
    expect(promptEnd({ status: { status_str: "success", completed: true, messages: [] }, outputs: { "9": { images: [img("a.png")] } } })).toEqual({ kind: "success", outputs: [{ node: "9", filename: "a.png", subfolder: "" }] });
    const error = ["execution_error", { prompt_id: "p", node_id: "3", node_type: "KSampler", exception_message: "CUDA out of memory\n", exception_type: "torch.OutOfMemoryError" }];
    expect(promptEnd({ status: { status_str: "error", completed: false, messages: [["execution_start", {}], error] } })).toEqual({ kind: "error", node: "3", nodeType: "KSampler", message: "CUDA out of memory" });
    expect(promptEnd({ status: { status_str: "error", completed: false, messages: [["execution_interrupted", { prompt_id: "p" }]] } })).toEqual({ kind: "interrupted" });
    expect(promptEnd({ outputs: {} })).toBeUndefined();
  });

  it("fails a workflow whose node raised with backend_error and the node's message, never failing over; an interrupt may be retried", async () => {
    const ctx = { images: memoryStore(), signal: AbortSignal.timeout(1000) };
    expect(await endOutcome(config, { kind: "error", node: "3", nodeType: "KSampler", message: "boom" }, ctx)).toEqual({
      kind: "failed",
      // The node goes with the failure, for the ComfyUI front's execution_error.
      failure: { code: "backend_error", message: "node 3 (KSampler): boom", retryable: false, node: { id: "3", type: "KSampler" } },
    });
    expect(await endOutcome(config, { kind: "interrupted" }, ctx)).toMatchObject({ kind: "failed", failure: { code: "interrupted", retryable: true } });
  });

  it("fails over a canonical job whose graph (Easel's own) raised: the backend's fault, counted; out of memory fails over uncounted", async () => {
    const ctx = { expected: 1, images: memoryStore(), signal: AbortSignal.timeout(1000) };
    expect(await endOutcome(config, { kind: "error", node: "3", nodeType: "KSampler", message: "boom" }, ctx)).toEqual({
      kind: "failed",
      failure: { code: "backend_failed", message: "node 3 (KSampler): boom", retryable: true },
    });
    const oom = "Allocation on device 0 would exceed allowed memory. (out of memory)";
    expect(await endOutcome(config, { kind: "error", node: "3", nodeType: "KSampler", message: oom }, ctx)).toMatchObject({ kind: "failed", failure: { code: "out_of_memory", retryable: true } });
  });

  it("takes a canonical job's missing images for a failure in disguise", async () => {
    const ctx = { expected: 2, images: memoryStore(), signal: AbortSignal.timeout(1000) };
    expect(await endOutcome(config, { kind: "success", outputs: [] }, ctx)).toMatchObject({ kind: "failed", failure: { code: "backend_failed", retryable: true } });
    expect(await endOutcome(config, { kind: "success", outputs: [{ node: "9", filename: "a.png", subfolder: "" }] }, ctx)).toMatchObject({
      kind: "failed",
      failure: { message: "the backend saved 1 of 2 images", retryable: true },
    });
  });
});

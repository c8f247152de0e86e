import { describe, expect, it } from "vitest";
import { historyEntry, historyWebhook, graphError, indexQueueItem, queueItem } from "../../../../src/dialects/comfyui/translate";
import { EaselError } from "../../../../src/errors";
import { RUN_ID, snapshot } from "../support";

const graph = {
  "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "m.safetensors" } },
  "9": { class_type: "SaveImage", inputs: { images: ["4", 0] } },
  "10": { class_type: "SaveImage", inputs: { images: ["4", 0] } },
};
const data = { prompt_id: "p-1", number: 7, client_id: "c", extra_data: { client_id: "c" } };

function comfy(status: "succeeded" | "failed" | "canceled" | "running") {
  const s = snapshot({ status, dialect: "comfyui", dialect_data: data, spec: { type: "workflow", samples: 3, workflow: graph }, error: status === "failed" ? { code: "backend_error", message: "KSampler: out of memory" } : null });
  const nodes = ["9", "9", "10"];
  return { ...s, job: { ...s.job, output: s.job.output.map((o, i) => ({ ...o, node_id: nodes[i] })) } };
}

describe("history entries", () => {
  it("lists each saved image under its node, /view-able by name, with the prompt as ComfyUI queued it", () => {
    const entry = historyEntry(comfy("succeeded"));
    expect(entry.prompt).toEqual([7, "p-1", graph, { client_id: "c" }, ["9", "10"]]);
    expect(entry.outputs).toEqual({
      "9": { images: [0, 1].map((i) => ({ filename: `${RUN_ID}_0000${i}_.png`, subfolder: "", type: "output" })) },
      "10": { images: [{ filename: `${RUN_ID}_00002_.png`, subfolder: "", type: "output" }] },
    });
    expect(entry.status.status_str).toBe("success");
    expect(entry.status.completed).toBe(true);
    expect(entry.status.messages.map(([t]) => t)).toEqual(["execution_start", "execution_cached", "execution_success"]);
  });

  it("says error for a failed prompt (with the failure's message) and for an interrupted one", () => {
    const failed = historyEntry(comfy("failed"));
    expect(failed.status).toMatchObject({ status_str: "error", completed: false });
    expect(failed.status.messages.at(-1)).toEqual(["execution_error", expect.objectContaining({ prompt_id: "p-1", exception_message: "KSampler: out of memory", exception_type: "backend_error" })]);
    expect(historyEntry(comfy("canceled")).status.messages.at(-1)?.[0]).toBe("execution_interrupted");
  });

  it("names the node that failed and its class_type in execution_error, as the backend said", () => {
    const s = comfy("failed");
    const failed = { ...s, job: { ...s.job, error: { code: "backend_error", message: "node 4: boom", node: { id: "4", type: "CheckpointLoaderSimple" } } } };
    expect(historyEntry(failed).status.messages.at(-1)?.[1]).toMatchObject({ node_id: "4", node_type: "CheckpointLoaderSimple" });
  });

  it("posts the entry with its prompt id as the webhook body", () => {
    expect(historyWebhook(comfy("succeeded"))).toMatchObject({ prompt_id: "p-1", status: { status_str: "success" }, outputs: { "9": {}, "10": {} } });
  });

  it("shows a waiting prompt as ComfyUI's queue item", () => {
    expect(queueItem(comfy("running"))).toEqual([7, "p-1", graph, { client_id: "c" }, ["9", "10"]]);
  });

  it("shows a prompt past those read from their jobs by its number, id and client alone, where clients look for it", () => {
    expect(indexQueueItem({ number: 7, prompt_id: "p-1", client_id: "c" })).toEqual([7, "p-1", {}, { client_id: "c" }, []]);
    expect(indexQueueItem({ number: 8, prompt_id: "p-2", client_id: null })).toEqual([8, "p-2", {}, {}, []]);
  });
});

describe("graph errors", () => {
  it("puts each problem under its node, in ComfyUI's node_errors, with ComfyUI's reason and the outputs that need it", () => {
    const err = new EaselError(422, "validation_failed", "bad", [
      { path: "prompt.9.inputs.images", message: 'links to node "5", which is not in the workflow' },
      { path: "prompt.4.inputs.ckpt_name", message: 'unknown checkpoint "x.safetensors": no backend lists it' },
    ]);
    const withLoader = { ...graph, "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "x.safetensors" } }, "9": { class_type: "SaveImage", inputs: { images: ["4", 0] } } };
    expect(graphError(err, withLoader)).toEqual({
      error: { type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation", details: "bad", extra_info: {} },
      node_errors: {
        "9": { errors: [{ type: "exception_during_validation", message: 'links to node "5", which is not in the workflow', details: "prompt.9.inputs.images", extra_info: {} }], dependent_outputs: ["9"], class_type: "SaveImage" },
        "4": { errors: [{ type: "value_not_in_list", message: 'unknown checkpoint "x.safetensors": no backend lists it', details: "prompt.4.inputs.ckpt_name", extra_info: {} }], dependent_outputs: ["9", "10"], class_type: "CheckpointLoaderSimple" },
      },
    });
  });

  it("answers a node without class_type, and a graph with nothing to run, as ComfyUI's first checks do", () => {
    const noClass = new EaselError(422, "validation_failed", "bad", [{ path: "prompt.10.class_type", message: "required" }]);
    expect(graphError(noClass, graph)).toEqual({ error: { type: "invalid_prompt", message: "Cannot execute because a node is missing the class_type property.", details: "Node ID '#10'", extra_info: {} }, node_errors: {} });
    const empty = new EaselError(422, "validation_failed", "prompt: has no nodes", [{ path: "prompt", message: "has no nodes" }]);
    expect(graphError(empty, {}).error.type).toBe("prompt_no_outputs");
  });
});

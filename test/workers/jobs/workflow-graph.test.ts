import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { graphCheckpoints, graphIssues, MAX_GRAPH_ISSUES, MAX_WORKFLOW_NODES, saveNodes } from "../../../src/jobs/workflow-graph";
import type { Workflow } from "../../../src/jobs/spec";

/** ComfyUI's default txt2img graph, in API format. */
const graph = (): Workflow => ({
  "3": { class_type: "KSampler", inputs: { seed: 5, steps: 20, cfg: 8, sampler_name: "euler", scheduler: "normal", denoise: 1, model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] } },
  "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "v1-5-pruned-emaonly.safetensors" } },
  "5": { class_type: "EmptyLatentImage", inputs: { width: 512, height: 512, batch_size: 1 } },
  "6": { class_type: "CLIPTextEncode", inputs: { text: "a cat", clip: ["4", 1] } },
  "7": { class_type: "CLIPTextEncode", inputs: { text: "blurry", clip: ["4", 1] } },
  "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
  "9": { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
});

const paths = (g: unknown) => graphIssues(g).map((i) => i.path.join("."));

describe("a workflow graph's checks", () => {
  it("passes ComfyUI's default graph, and one saving by another Save node", () => {
    expect(graphIssues(graph())).toEqual([]);
    const webp = graph();
    webp["9"] = { class_type: "SaveAnimatedWEBP", inputs: { images: ["8", 0], filename_prefix: "x", fps: 6, lossless: false, quality: 80, method: "default" } };
    expect(graphIssues(webp)).toEqual([]);
  });

  it("names a link to a node that is not there by its node and input", () => {
    const g = graph();
    g["3"] = { ...g["3"]!, inputs: { ...g["3"]!.inputs, model: ["44", 0] } };
    expect(graphIssues(g)).toEqual([{ path: ["3", "inputs", "model"], message: 'links to node "44", which is not in the workflow' }]);
  });

  it("refuses a list that is not [node_id, output_index]", () => {
    for (const bad of [[4, 0], ["4", -1], ["4", 0.5], ["4"], ["4", 0, 1]]) {
      const g = graph();
      g["8"] = { ...g["8"]!, inputs: { samples: ["3", 0], vae: bad } };
      expect(paths(g)).toEqual(["8.inputs.vae"]);
    }
  });

  it("names a node without a class_type or without inputs", () => {
    const g: Record<string, unknown> = { ...graph(), "5": { inputs: { width: 512, height: 512, batch_size: 1 } }, "6": { class_type: "CLIPTextEncode", inputs: "a cat" }, "7": "CLIPTextEncode" };
    expect(paths(g)).toEqual(["5.class_type", "6.inputs", "7"]);
  });

  it("refuses a graph that saves nothing: a preview is not an output", () => {
    const g = graph();
    g["9"] = { class_type: "PreviewImage", inputs: { images: ["8", 0] } };
    expect(graphIssues(g)).toEqual([{ path: [], message: expect.stringContaining("no output node") }]);
  });

  it("refuses what is not an object of nodes, an empty one, and one over the node bound", () => {
    for (const bad of [[], "graph", null, {}]) expect(paths(bad)).toEqual([""]);
    const huge: Record<string, unknown> = {};
    for (let i = 0; i <= MAX_WORKFLOW_NODES; i++) huge[String(i)] = { class_type: "SaveImage", inputs: {} };
    expect(graphIssues(huge)[0]?.message).toContain(`more than ${MAX_WORKFLOW_NODES}`);
  });

  it("lists at most MAX_GRAPH_ISSUES problems", () => {
    const broken: Record<string, unknown> = {};
    for (let i = 0; i < 200; i++) broken[String(i)] = { class_type: "SaveImage", inputs: { images: ["missing", 0] } };
    expect(graphIssues(broken)).toHaveLength(MAX_GRAPH_ISSUES);
  });

  it("tells each saving node's files by the prefix the attempt queued: its own, ComfyUI's default, or a SaveImageWebsocket's per-attempt one", () => {
    const graph: Workflow = {
      "9": { class_type: "SaveImage", inputs: { filename_prefix: "cats/cat" } },
      "10": { class_type: "SaveImage", inputs: {} },
      a: { class_type: "SaveImageWebsocket", inputs: {} },
      b: { class_type: "SaveImageWebsocket", inputs: {} },
      p: { class_type: "PreviewImage", inputs: {} },
    };
    expect(saveNodes(graph, "run_x-2")).toEqual([
      { node: "9", prefix: "cats/cat" },
      { node: "10", prefix: "ComfyUI" },
      { node: "a", prefix: "easel-run_x-2-ws0" },
      { node: "b", prefix: "easel-run_x-2-ws1" },
    ]);
  });

  it("lists the checkpoints a graph loads, with their nodes", () => {
    const g = graph();
    g["10"] = { class_type: "CheckpointLoader", inputs: { config_name: "v1.yaml", ckpt_name: "sdxl.safetensors" } };
    expect(graphCheckpoints(g)).toEqual([
      { node: "4", name: "v1-5-pruned-emaonly.safetensors" },
      { node: "10", name: "sdxl.safetensors" },
    ]);
  });
});

// The first request of a file starts the Worker, which takes seconds on a busy machine.
describe("POST /v1/jobs with a workflow", { timeout: 30_000 }, () => {
  const post = (body: unknown) =>
    exports.default.fetch(new Request("http://gateway.test/v1/jobs", { method: "POST", headers: { authorization: "Bearer sk_acme_1", "content-type": "application/json" }, body: JSON.stringify(body) }));
  type Refusal = { error: { code: string; details: { path: string; message: string }[] } };

  it("is a 422 naming the node of a bad link", async () => {
    const g = graph();
    g["8"] = { ...g["8"]!, inputs: { samples: ["3", 0], vae: ["12", 2] } };
    const res = await post({ type: "workflow", workflow: g });
    expect(res.status).toBe(422);
    const body = (await res.json()) as Refusal;
    expect(body.error.details).toEqual([{ path: "workflow.8.inputs.vae", message: 'links to node "12", which is not in the workflow' }]);
  });

  it("refuses a generation's fields beside the graph, and a graph on another type, naming each", async () => {
    const res = await post({ type: "workflow", workflow: graph(), prompt: "a cat", steps: 20 });
    expect(res.status).toBe(422);
    expect(((await res.json()) as Refusal).error.details.map((d) => d.path).sort()).toEqual(["prompt", "steps"]);
    const other = await post({ type: "txt2img", prompt: "a cat", workflow: graph() });
    expect(((await other.json()) as Refusal).error.details).toEqual([{ path: "workflow", message: "only for type workflow" }]);
    const missing = await post({ type: "workflow" });
    expect(((await missing.json()) as Refusal).error.details).toEqual([{ path: "workflow", message: "required when type is workflow" }]);
  });
});

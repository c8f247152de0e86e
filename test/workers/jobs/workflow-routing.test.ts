import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { fittingBackends } from "../../../src/backends/models";
import type { BackendConfig } from "../../../src/config";
import type { Workflow } from "../../../src/jobs/spec";
import { workflowBackends } from "../../../src/jobs/workflow-routing";

const comfy = (name: string, models: string[], over: Partial<BackendConfig> = {}): BackendConfig => ({
  name,
  kind: "comfyui",
  url: `http://${name}`,
  models,
  types: ["img2img", "txt2img", "upscale", "workflow"],
  max_concurrency: 1,
  timeout_s: 60,
  circuit_cooldown_s: 30,
  ...over,
});
const a1111: BackendConfig = { name: "a1111", kind: "a1111", url: "http://a1111", types: ["img2img", "txt2img", "upscale"], max_concurrency: 1, timeout_s: 60, circuit_cooldown_s: 30 };

const loading = (...ckpts: string[]): Workflow => ({
  ...Object.fromEntries(ckpts.map((ckpt_name, i) => [String(i + 1), { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name } }])),
  "20": { class_type: "SaveImage", inputs: { images: ["1", 0] } },
});
const names = (list: BackendConfig[]) => list.map((b) => b.name);
const refusal = (p: Promise<unknown>) => p.then(() => undefined, (err: { details?: unknown }) => err.details);

describe("where a workflow job may run", () => {
  const all = [a1111, comfy("sd15", ["v1-5-pruned-emaonly"]), comfy("xl", ["sdxl_base_1.0.safetensors", "v1-5-pruned-emaonly.ckpt"])];

  it("goes only to backends that have every checkpoint the graph loads, matched as model names are", async () => {
    expect(names(await workflowBackends(env, all, loading("v1-5-pruned-emaonly.safetensors"), undefined, "workflow"))).toEqual(["sd15", "xl"]);
    expect(names(await workflowBackends(env, all, loading("v1-5-pruned-emaonly.safetensors", "sdxl_base_1.0"), undefined, "workflow"))).toEqual(["xl"]);
    // A graph that loads no checkpoint may run on any backend that runs workflows, never on A1111.
    expect(names(await workflowBackends(env, all, { "1": { class_type: "SaveImage", inputs: {} } }, undefined, "workflow"))).toEqual(["sd15", "xl"]);
  });

  it("is a 422 naming the node of a checkpoint no backend has", async () => {
    expect(await refusal(workflowBackends(env, all, loading("v1-5-pruned-emaonly", "nope.safetensors"), undefined, "workflow"))).toEqual([
      { path: "workflow.2.inputs.ckpt_name", message: 'unknown checkpoint "nope.safetensors": no backend lists it' },
    ]);
  });

  it("holds a pin to its own list, and refuses a pin to a backend that does not run workflows", async () => {
    expect(await refusal(workflowBackends(env, all, loading("sdxl_base_1.0"), "sd15", "task.content"))).toEqual([
      { path: "task.content.1.inputs.ckpt_name", message: 'unknown checkpoint "sdxl_base_1.0": backend "sd15" does not list it' },
    ]);
    expect(await refusal(workflowBackends(env, all, loading("v1-5-pruned-emaonly"), "a1111", "workflow"))).toEqual([{ path: "backend", message: 'backend "a1111" does not run workflow jobs' }]);
  });

  it("keeps the runner to the backends intake chose", () => {
    expect(names(fittingBackends(all, { type: "workflow", among: ["xl"] }))).toEqual(["xl"]);
    expect(names(fittingBackends(all, { type: "workflow" }))).toEqual(["sd15", "xl"]);
  });
});

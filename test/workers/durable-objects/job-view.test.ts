import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { workflowOutputs } from "../../../durable-objects/job/view";
import type { Env } from "../../../src/env";
import { snapshot } from "../dialects/support";

describe("a workflow job's saving nodes for a worker-comfyui answer", () => {
  const graph = { "9": { class_type: "SaveImage", inputs: { filename_prefix: "cat" } }, ws: { class_type: "SaveImageWebsocket", inputs: {} } };

  it("are read back from R2 for a graph kept there, as the attempt queued them", async () => {
    const input = { ...snapshot({ spec: { type: "workflow", samples: 1 } }).input, pass_through_key: "passthrough/view-test.json" };
    await env.IMAGES.put(input.pass_through_key, JSON.stringify({ workflow: graph }));
    expect(await workflowOutputs(env, input, "run_v-1")?.saveNodes()).toEqual([
      { node: "9", prefix: "cat" },
      { node: "ws", prefix: "easel-run_v-1-ws0" },
    ]);
  });

  it("are none when R2 fails, so a finished generation is kept (without its nodes), never failed to run again", async () => {
    const failing = { ...env, IMAGES: { ...env.IMAGES, get: () => Promise.reject(new Error("R2 down")) } } as unknown as Env;
    const input = { ...snapshot({ spec: { type: "workflow", samples: 1 } }).input, pass_through_key: "passthrough/view-test-2.json" };
    expect(await workflowOutputs(failing, input, "run_v-1")?.saveNodes()).toEqual([]);
    expect(workflowOutputs(env, snapshot().input, "run_v-1")).toBeUndefined();
  });
});

import { afterEach, describe, expect, it, vi } from "vitest";
import { promptIdOf } from "../../../src/backends/comfyui-api";
import { ComfyUIAdapter } from "../../../src/backends/comfyui";
import { BackendSchema } from "../../../src/config/schema";

const adapter = new ComfyUIAdapter(BackendSchema.parse({ name: "comfy", kind: "comfyui", url: "http://comfy.test:8188", api_key: "k" }));
const queueItem = (id: string) => [1, id, {}, {}, ["9"]];

/** A ComfyUI whose queue holds `running` and `pending`; every request is recorded. */
function fakeComfy(queue: { running: string[]; pending: string[] }, objectInfo: Record<string, unknown> = {}) {
  const calls: { method: string; path: string; body: string | null; auth: string | null }[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    calls.push({ method: req.method, path: url.pathname, body: req.method === "POST" ? await req.text() : null, auth: req.headers.get("authorization") });
    if (url.pathname === "/queue" && req.method === "GET") return Response.json({ queue_running: queue.running.map(queueItem), queue_pending: queue.pending.map(queueItem) });
    if (url.pathname.startsWith("/object_info/")) return Response.json(objectInfo);
    return Response.json({});
  });
  return calls;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("ComfyUI cancel", () => {
  it("interrupts the attempt's prompt by its id while it runs, never globally", async () => {
    const mine = await promptIdOf("run_a-1");
    const calls = fakeComfy({ running: [mine], pending: ["neighbour"] });
    await adapter.cancel({ externalId: undefined, taskId: "run_a-1" }, AbortSignal.timeout(5000));
    expect(calls.filter((c) => c.method === "POST")).toEqual([{ method: "POST", path: "/interrupt", body: JSON.stringify({ prompt_id: mine }), auth: "Bearer k" }]);
  });

  it("takes a waiting prompt out of the queue, and leaves a neighbour's running prompt alone", async () => {
    const mine = await promptIdOf("run_a-1");
    const calls = fakeComfy({ running: ["neighbour"], pending: [mine] });
    await adapter.cancel({ externalId: mine, taskId: "run_a-1" }, AbortSignal.timeout(5000));
    expect(calls.filter((c) => c.method === "POST").map((c) => [c.path, c.body])).toEqual([["/queue", JSON.stringify({ delete: [mine] })]]);
  });

  it("sends nothing for a prompt that is in neither list", async () => {
    const calls = fakeComfy({ running: ["neighbour"], pending: [] });
    await adapter.cancel({ externalId: "00000000-0000-4000-8000-000000000000", taskId: "run_a-1" }, AbortSignal.timeout(5000));
    expect(calls.filter((c) => c.method === "POST")).toEqual([]);
  });
});

describe("ComfyUI models", () => {
  it("lists the checkpoints /object_info offers, by file name and by name without extension", async () => {
    fakeComfy({ running: [], pending: [] }, { CheckpointLoaderSimple: { input: { required: { ckpt_name: [["v1-5-pruned-emaonly.safetensors", "xl/base.ckpt"], {}] } } } });
    expect(await adapter.listModels(AbortSignal.timeout(5000))).toEqual([
      { title: "v1-5-pruned-emaonly.safetensors", model_name: "v1-5-pruned-emaonly", hash: null, sha256: null, filename: "v1-5-pruned-emaonly.safetensors", config: null, backend: "comfy" },
      { title: "xl/base.ckpt", model_name: "xl/base", hash: null, sha256: null, filename: "xl/base.ckpt", config: null, backend: "comfy" },
    ]);
  });
});

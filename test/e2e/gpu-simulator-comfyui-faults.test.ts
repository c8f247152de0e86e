/** The simulator's ComfyUI under its SimConfig knobs: injected failures, ComfyUI's output cache, previews, sockets down. */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { pngSize } from "./support/client";
import { txt2img, type Graph, useComfySimulator } from "./support/comfyui";
import { openSocket } from "./support/websocket";

const comfy = useComfySimulator();

describe("gpu-simulator: ComfyUI faults and options", () => {
  it("reports an injected failure as execution_error on the sampler", async () => {
    await comfy.sim.config({ comfyui: { errorRate: 1 } });
    const socket = await openSocket(`${comfy.ws}/ws?clientId=client-c`);
    try {
      const { prompt_id } = await comfy.api.queuePrompt({ prompt: txt2img("fail"), client_id: "client-c" });
      const error = await socket.waitFor((m) => m.type === "execution_error" && m.data.prompt_id === prompt_id);
      expect(error.data).toMatchObject({ node_id: "3", node_type: "KSampler", exception_type: "RuntimeError", exception_message: expect.any(String), traceback: expect.any(Array) });
      await socket.waitFor((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === prompt_id);
      expect((await comfy.api.history(prompt_id))[prompt_id]?.status.messages.map(([e]) => e)).toEqual(["execution_start", "execution_cached", "execution_error"]);
    } finally {
      await comfy.sim.config({ comfyui: { errorRate: 0 } });
      socket.close();
    }
  });

  it("with ComfyUI's cache on, reuses what the previous prompt ran: nothing for the same graph, the sampler on for a new seed", async () => {
    await comfy.sim.config({ comfyui: { comfyCache: true } });
    const socket = await openSocket(`${comfy.ws}/ws?clientId=client-f`);
    try {
      const run = async (graph: Graph) => {
        const { prompt_id } = await comfy.api.queuePrompt({ prompt: graph, client_id: "client-f" });
        await socket.waitFor((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === prompt_id);
        const mine = socket.messages.filter((m) => m.data.prompt_id === prompt_id);
        return {
          cached: mine.find((m) => m.type === "execution_cached")?.data.nodes,
          ran: mine.filter((m) => m.type === "executing" && m.data.node !== null).map((m) => m.data.node),
          images: (await comfy.api.history(prompt_id))[prompt_id]?.outputs["9"]?.images.map((i) => i.filename),
        };
      };
      const first = await run(txt2img("cached"));
      expect(first.ran).toEqual(["4", "6", "7", "5", "3", "8", "9"]);
      const same = await run(txt2img("cached"));
      expect(same).toEqual({ cached: ["3", "4", "5", "6", "7", "8", "9"], ran: [], images: first.images });
      const reseeded = await run(txt2img("cached", (g) => ((g["3"] as Graph[string]).inputs.seed = 1)));
      expect(reseeded.cached).toEqual(["4", "5", "6", "7"]);
      expect(reseeded.ran).toEqual(["3", "8", "9"]);
      expect(reseeded.images).toEqual(["cached_00002_.png"]);
    } finally {
      await comfy.sim.config({ comfyui: { comfyCache: false } });
      socket.close();
    }
  });

  it("sends a binary preview frame per sampling step when previews are on", async () => {
    await comfy.sim.config({ comfyui: { comfyPreviews: true } });
    const socket = await openSocket(`${comfy.ws}/ws?clientId=client-g`);
    try {
      const { prompt_id } = await comfy.api.queuePrompt({ prompt: txt2img("previews"), client_id: "client-g" });
      await socket.waitFor((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === prompt_id);
      expect(socket.binary).toHaveLength(3);
      for (const frame of socket.binary) {
        expect([frame.readUInt32BE(0), frame.readUInt32BE(4)]).toEqual([1, 2]);
        expect(pngSize(frame.subarray(8))).toEqual({ width: 64, height: 64 });
      }
    } finally {
      await comfy.sim.config({ comfyui: { comfyPreviews: false } });
      socket.close();
    }
  });

  it("takes a prompt and drops the connection before answering (dropAfterAccept): the prompt still runs, once", async () => {
    await comfy.sim.config({ comfyui: { dropAfterAccept: 1 } });
    const promptId = randomUUID();
    await expect(comfy.api.post("/prompt", { prompt: txt2img("dropped"), prompt_id: promptId })).rejects.toThrow();
    expect((await comfy.api.finished(promptId))?.outputs["9"]?.images[0]?.filename).toBe("dropped_00001_.png");
    const stats = await comfy.sim.stats();
    expect(stats.byPrompt[promptId]).toBe(1);
    expect(stats.droppedAfterAccept).toBe(1);
  });

  it("keeps answering over HTTP while its sockets are down: the prompt runs and its history is there", async () => {
    const socket = await openSocket(`${comfy.ws}/ws?clientId=client-d`);
    await comfy.sim.config({ comfyui: { comfySocketDown: true } });
    try {
      const { prompt_id } = await comfy.api.queuePrompt({ prompt: txt2img("nosocket"), client_id: "client-d" });
      await expect(openSocket(`${comfy.ws}/ws?clientId=client-e`)).rejects.toThrow();
      const entry = await comfy.api.finished(prompt_id);
      expect(entry?.status.status_str).toBe("success");
      expect(socket.messages.some((m) => m.data.prompt_id === prompt_id)).toBe(false);
    } finally {
      await comfy.sim.config({ comfyui: { comfySocketDown: false } });
      socket.close();
    }
  });

});

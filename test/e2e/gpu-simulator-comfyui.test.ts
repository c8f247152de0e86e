/** The simulator's ComfyUI server API: the wire formats the comfy backends and the ComfyUI front are built against. */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { pngSize } from "./support/client";
import { forPrompt, txt2img, type Graph, useComfySimulator } from "./support/comfyui";
import { startSimulatorProcess } from "./support/processes";
import { openSocket } from "./support/websocket";

const comfy = useComfySimulator();

describe("gpu-simulator: ComfyUI", () => {
  it("runs a prompt with ComfyUI's message sequence, keeps its history and serves its PNG of the asked size", async () => {
    const socket = await openSocket(`${comfy.ws}/ws?clientId=client-a`);
    try {
      const first = await socket.waitFor(() => true);
      expect(first).toEqual({ type: "status", data: { status: { exec_info: { queue_remaining: 0 } }, sid: "client-a" } });
      socket.send(JSON.stringify({ type: "feature_flags", data: { supports_preview_metadata: true } }));
      expect((await socket.waitFor((m) => m.type === "feature_flags")).data).toMatchObject({ supports_preview_metadata: true });
      const promptId = randomUUID();
      const queued = await comfy.api.queuePrompt({ prompt: txt2img("seq"), client_id: "client-a", prompt_id: promptId });
      expect(queued).toEqual({ prompt_id: promptId, number: expect.any(Number), node_errors: {} });
      await socket.waitFor((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === promptId);

      const mine = socket.messages.filter((m) => m.type !== "status" && m.type !== "progress_state" && forPrompt(promptId)(m));
      expect(mine.map((m) => m.type)).toEqual(["execution_start", "execution_cached", ...Array(5).fill("executing"), "progress", "progress", "progress", "executing", "executing", "executed", "execution_success", "executing"]);
      expect(mine.filter((m) => m.type === "executing").map((m) => m.data.node)).toEqual(["4", "6", "7", "5", "3", "8", "9", null]);
      expect(mine.filter((m) => m.type === "progress").map((m) => m.data)).toEqual([1, 2, 3].map((value) => ({ value, max: 3, prompt_id: promptId, node: "3" })));
      const states = socket.messages.filter((m) => m.type === "progress_state" && forPrompt(promptId)(m));
      expect(states.at(-1)?.data.nodes).toMatchObject({ "3": { value: 3, max: 3, state: "finished", node_id: "3" }, "9": { state: "finished" } });
      const executed = mine.find((m) => m.type === "executed");
      expect(executed?.data).toEqual({ node: "9", display_node: "9", output: { images: [{ filename: "seq_00001_.png", subfolder: "", type: "output" }] }, prompt_id: promptId });
      expect(socket.messages.some((m) => m.type === "status" && (m.data.status as { exec_info: { queue_remaining: number } }).exec_info.queue_remaining === 1)).toBe(true);

      const entry = (await comfy.api.history(promptId))[promptId];
      expect(entry?.prompt.slice(0, 2)).toEqual([queued.number, promptId]);
      expect(entry?.prompt[3]).toEqual({ client_id: "client-a" });
      expect(entry?.outputs).toEqual({ "9": { images: [{ filename: "seq_00001_.png", subfolder: "", type: "output" }] } });
      expect(entry?.status).toMatchObject({ status_str: "success", completed: true });
      expect(entry?.status.messages.map(([event]) => event)).toEqual(["execution_start", "execution_cached", "execution_success"]);
      expect(await comfy.api.history(randomUUID())).toEqual({});

      const view = await fetch(`${comfy.sim.url}/view?filename=seq_00001_.png&subfolder=&type=output`);
      expect(view.headers.get("content-type")).toBe("image/png");
      const bytes = new Uint8Array(await view.arrayBuffer());
      expect(pngSize(bytes)).toEqual({ width: 64, height: 48 });
      // The graph rides in the PNG's `prompt` text chunk, as SaveImage writes it.
      expect(Buffer.from(bytes).toString("latin1")).toContain('"filename_prefix":"seq"');
      expect((await fetch(`${comfy.sim.url}/view?filename=nothing.png&type=output`)).status).toBe(404);
      expect((await fetch(`${comfy.sim.url}/view?filename=../x.png&type=output`)).status).toBe(400);

      // A second run of the same graph saves the next file, with the same pixels.
      const again = await comfy.api.queuePrompt({ prompt: txt2img("seq"), client_id: "client-a" });
      await socket.waitFor((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === again.prompt_id);
      const second = new Uint8Array(await (await fetch(`${comfy.sim.url}/api/view?filename=seq_00002_.png&type=output`)).arrayBuffer());
      expect(Buffer.from(second).equals(Buffer.from(bytes))).toBe(true);
      expect((await comfy.sim.stats()).byPrompt[promptId]).toBe(1);
    } finally {
      socket.close();
    }
  });

  it("sends a SaveImageWebsocket's images to the prompt's client only, each a progress and a PNG frame, and writes and lists none", async () => {
    const [mine, other] = await Promise.all([openSocket(`${comfy.ws}/ws?clientId=ws-mine`), openSocket(`${comfy.ws}/ws?clientId=ws-other`)]);
    try {
      const graph: Graph = txt2img("ws");
      delete graph["9"];
      Object.assign((graph["5"] as Graph[string]).inputs, { batch_size: 2 });
      graph.ws = { class_type: "SaveImageWebsocket", inputs: { images: ["8", 0] } };
      const { prompt_id } = await comfy.api.queuePrompt({ prompt: graph, client_id: "ws-mine" });
      await mine.waitFor((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === prompt_id);
      const seen = mine.received.filter((m) => Buffer.isBuffer(m) || m.type !== "progress_state");
      const from = seen.findIndex((m) => !Buffer.isBuffer(m) && m.type === "executing" && m.data.node === "ws");
      const run = seen.slice(from + 1, from + 5).map((m) => (Buffer.isBuffer(m) ? { header: [...m.subarray(0, 8)], size: pngSize(new Uint8Array(m.subarray(8))) } : m.type === "progress" ? m.data : m.type));
      expect(run).toEqual([0, 1].flatMap((value) => [{ value, max: 2, prompt_id, node: "ws" }, { header: [0, 0, 0, 1, 0, 0, 0, 2], size: { width: 64, height: 48 } }]));
      expect(mine.messages.some((m) => m.type === "executed" && m.data.node === "ws")).toBe(false);
      expect(other.binary).toEqual([]);
      expect((await comfy.api.history(prompt_id))[prompt_id]?.outputs).toEqual({});
    } finally {
      mine.close();
      other.close();
    }
  });

  it("refuses a bad graph with ComfyUI's 400 shapes", async () => {
    const badModel = await comfy.api.post("/prompt", { prompt: txt2img("bad", (g) => ((g["4"] as Graph[string]).inputs.ckpt_name = "sdxl-nope.safetensors")) });
    expect(badModel.status).toBe(400);
    expect(await badModel.json()).toEqual({
      error: { type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation", details: "", extra_info: {} },
      node_errors: {
        "4": {
          errors: [{ type: "value_not_in_list", message: "Value not in list", details: "ckpt_name: 'sdxl-nope.safetensors' not in ['v1-5-pruned-emaonly.safetensors', 'chilloutmix-Ni.safetensors']", extra_info: expect.objectContaining({ input_name: "ckpt_name", received_value: "sdxl-nope.safetensors" }) }],
          dependent_outputs: ["9"],
          class_type: "CheckpointLoaderSimple",
        },
      },
    });
    const unknown = await comfy.api.post("/api/prompt", { prompt: { ...txt2img("bad"), "10": { class_type: "NoSuchNode", inputs: {} } } });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { type: string; details: string } }).error).toMatchObject({ type: "missing_node_type", details: "Node ID '#10'" });
    const noOutput = await comfy.api.post("/prompt", { prompt: txt2img("bad", (g) => delete g["9"]) });
    expect(((await noOutput.json()) as { error: { type: string } }).error.type).toBe("prompt_no_outputs");
    const missing = (await (await comfy.api.post("/prompt", { prompt: txt2img("bad", (g) => delete (g["3"] as Graph[string]).inputs.steps) })).json()) as { node_errors: Record<string, { errors: { type: string; details: string }[] }> };
    expect(missing.node_errors["3"]?.errors).toEqual([expect.objectContaining({ type: "required_input_missing", details: "steps" })]);
    const dangling = (await (await comfy.api.post("/prompt", { prompt: txt2img("bad", (g) => ((g["9"] as Graph[string]).inputs.images = ["99", 0])) })).json()) as { node_errors: Record<string, { errors: { type: string }[] }> };
    expect(dangling.node_errors["9"]?.errors[0]?.type).toBe("exception_during_validation");
    expect((await comfy.api.post("/prompt", { prompt: txt2img("bad"), prompt_id: "not-a-uuid" })).status).toBe(400);
    expect((await (await fetch(`${comfy.sim.url}/queue`)).json())).toEqual({ queue_running: [], queue_pending: [] });
  });

  it("uploads images with ComfyUI's renaming, and LoadImage → img2img → upscale saves at the scaled size", async () => {
    const upload = async (png: Uint8Array, name: string, extra: Record<string, string> = {}) => {
      const form = new FormData();
      form.append("image", new Blob([png], { type: "image/png" }), name);
      for (const [k, v] of Object.entries(extra)) form.append(k, v);
      return (await (await fetch(`${comfy.sim.url}/upload/image`, { method: "POST", body: form })).json()) as { name: string; subfolder: string; type: string };
    };
    const red = encodePng(40, 24, () => [255, 0, 0]);
    expect(await upload(red, "in.png")).toEqual({ name: "in.png", subfolder: "", type: "input" });
    expect(await upload(red, "in.png")).toEqual({ name: "in.png", subfolder: "", type: "input" });
    expect(await upload(encodePng(40, 24, () => [0, 0, 255]), "in.png")).toEqual({ name: "in (1).png", subfolder: "", type: "input" });
    expect(await upload(encodePng(8, 8, () => [0, 255, 0]), "in.png", { overwrite: "true" })).toEqual({ name: "in.png", subfolder: "", type: "input" });
    const choices = ((await (await fetch(`${comfy.sim.url}/object_info/LoadImage`)).json()) as { LoadImage: { input: { required: { image: [string[]] } } } }).LoadImage.input.required.image[0];
    expect(choices).toEqual(expect.arrayContaining(["in.png", "in (1).png"]));

    const graph: Graph = {
      "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "chilloutmix-Ni.safetensors" } },
      "2": { class_type: "LoadImage", inputs: { image: "in (1).png" } },
      "3": { class_type: "VAEEncode", inputs: { pixels: ["2", 0], vae: ["1", 2] } },
      "4": { class_type: "CLIPTextEncode", inputs: { text: "a blue square", clip: ["1", 1] } },
      "5": { class_type: "CLIPTextEncode", inputs: { text: "", clip: ["1", 1] } },
      "6": { class_type: "KSampler", inputs: { model: ["1", 0], positive: ["4", 0], negative: ["5", 0], latent_image: ["3", 0], seed: 5, steps: 4, cfg: 7, sampler_name: "euler", scheduler: "normal", denoise: 0.5 } },
      "7": { class_type: "VAEDecode", inputs: { samples: ["6", 0], vae: ["1", 2] } },
      "8": { class_type: "ImageScaleBy", inputs: { image: ["7", 0], upscale_method: "nearest-exact", scale_by: 2 } },
      "9": { class_type: "SaveImage", inputs: { images: ["8", 0], filename_prefix: "img2img/up" } },
      "10": { class_type: "PreviewImage", inputs: { images: ["7", 0] } },
    };
    const { prompt_id } = await comfy.api.queuePrompt({ prompt: graph });
    const entry = await comfy.api.finished(prompt_id);
    expect(entry?.outputs["9"]?.images).toEqual([{ filename: "up_00001_.png", subfolder: "img2img", type: "output" }]);
    expect(entry?.outputs["10"]?.images[0]?.type).toBe("temp");
    const saved = new Uint8Array(await (await fetch(`${comfy.sim.url}/view?filename=up_00001_.png&subfolder=img2img&type=output`)).arrayBuffer());
    expect(pngSize(saved)).toEqual({ width: 80, height: 48 });
    const preview = entry?.outputs["10"]?.images[0];
    const previewBytes = new Uint8Array(await (await fetch(`${comfy.sim.url}/view?filename=${encodeURIComponent(preview?.filename ?? "")}&type=temp`)).arrayBuffer());
    expect(pngSize(previewBytes)).toEqual({ width: 40, height: 24 });

    const missing = await comfy.api.post("/prompt", { prompt: { ...graph, "2": { class_type: "LoadImage", inputs: { image: "never-uploaded.png" } } } });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { node_errors: Record<string, { errors: { type: string; details: string }[] }> }).node_errors["2"]?.errors[0]).toMatchObject({ type: "custom_validation_failed", details: "image - Invalid image file: never-uploaded.png" });
  });

  it("interrupts only the prompt named, deletes a waiting one, and runs one prompt at a time", async () => {
    await comfy.sim.config({ msPerImage: 2000 });
    const socket = await openSocket(`${comfy.ws}/ws?clientId=client-b`);
    try {
      const slow = (prefix: string) => txt2img(prefix, (g) => ((g["3"] as Graph[string]).inputs.steps = 20));
      const a = await comfy.api.queuePrompt({ prompt: slow("a"), client_id: "client-b" });
      const b = await comfy.api.queuePrompt({ prompt: txt2img("b"), client_id: "client-b" });
      const c = await comfy.api.queuePrompt({ prompt: txt2img("c"), client_id: "client-b" });
      await socket.waitFor((m) => m.type === "progress" && m.data.prompt_id === a.prompt_id);
      const queue = (await (await fetch(`${comfy.sim.url}/queue`)).json()) as { queue_running: unknown[][]; queue_pending: unknown[][] };
      expect(queue.queue_running.map((i) => i[1])).toEqual([a.prompt_id]);
      expect(queue.queue_pending.map((i) => i[1])).toEqual([b.prompt_id, c.prompt_id]);
      expect(queue.queue_pending[0]?.[4]).toEqual(["9"]);

      await comfy.api.post("/queue", { delete: [c.prompt_id] });
      // Only prompts sampled from now on are fast: `a` keeps its pace.
      await comfy.sim.config({ msPerImage: 0 });
      // Naming a prompt that is not running interrupts nothing.
      await comfy.api.post("/interrupt", { prompt_id: b.prompt_id });
      await comfy.api.post("/interrupt", { prompt_id: a.prompt_id });
      const stopped = await socket.waitFor((m) => m.type === "execution_interrupted");
      expect(stopped.data).toMatchObject({ prompt_id: a.prompt_id, node_id: "3", node_type: "KSampler" });
      await socket.waitFor((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === b.prompt_id);
      expect(socket.messages.filter((m) => m.type === "execution_interrupted")).toHaveLength(1);
      expect((await comfy.api.history(a.prompt_id))[a.prompt_id]?.status).toMatchObject({ status_str: "error", completed: false });
      expect((await comfy.api.history(b.prompt_id))[b.prompt_id]?.status.status_str).toBe("success");
      expect(await comfy.api.history(c.prompt_id)).toEqual({});
      const stats = await comfy.sim.stats();
      expect(stats.byKind.comfyui.maxConcurrent).toBe(1);
      expect([a, b, c].map((p) => stats.byPrompt[p.prompt_id])).toEqual([1, 1, 1]);
    } finally {
      await comfy.sim.config({ msPerImage: 0 });
      socket.close();
    }
  });

});

describe("gpu-simulator: ComfyUI auth", () => {
  it("refuses requests and sockets without the key, on both the root and /api paths", async () => {
    const guarded = await startSimulatorProcess({ env: { SIM_COMFYUI_API_KEY: "comfy-key" } });
    try {
      expect((await fetch(`${guarded.url}/prompt`)).status).toBe(401);
      expect((await fetch(`${guarded.url}/api/object_info`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
      expect((await fetch(`${guarded.url}/api/prompt`, { headers: { authorization: "Bearer comfy-key" } })).status).toBe(200);
      const wsUrl = `${guarded.url.replace("http", "ws")}/ws?clientId=x`;
      await expect(openSocket(wsUrl)).rejects.toThrow("401");
      const socket = await openSocket(wsUrl, { authorization: "Bearer comfy-key" });
      expect((await socket.waitFor((m) => m.type === "status")).data.sid).toBe("x");
      socket.close();
    } finally {
      await guarded.stop();
    }
  });
});

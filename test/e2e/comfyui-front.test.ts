/**
 * The ComfyUI front against a real gateway and the simulator's ComfyUI server, driven by the real,
 * unmodified `@saintno/comfyui-sdk` client pointed at the gateway (only the host changes), and by
 * raw HTTP and WebSocket calls for what the client does not show: tenants never see each other.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CallWrapper, ComfyApi, PromptBuilder } from "@saintno/comfyui-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { pngSize } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";
import { openSocket, type SocketMessage } from "./support/websocket";

type Node = { class_type: string; inputs: Record<string, unknown>; _meta: { title: string } };
type Graph = Record<string, Node>;
/** Nodes with the `_meta.title` that "Save (API Format)" writes, as the SDK's types ask. */
const titled = (g: Record<string, Omit<Node, "_meta">>): Graph => Object.fromEntries(Object.entries(g).map(([id, n]) => [id, { ...n, _meta: { title: n.class_type } }]));
const EXAMPLE = titled(JSON.parse(readFileSync(new URL("../../examples/comfyui-txt2img.json", import.meta.url), "utf8")) as Record<string, Omit<Node, "_meta">>);
const KEY = "sk_comfy_a";
const OTHER = "sk_comfy_b";
const CAPPED = "sk_comfy_capped";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let dir: string;
const clients: ComfyApi[] = [];

beforeAll(async () => {
  // Each image takes a while, so a prompt can be watched and interrupted while it runs.
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 1500 }) } });
  receiver = await startReceiver({ secrets: [SECRET] });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-comfyui-front-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({
        a: { api_keys: [KEY], webhook_secrets: [SECRET] },
        b: { api_keys: [OTHER], webhook_secrets: [SECRET] },
        capped: { api_keys: [CAPPED], webhook_secrets: [SECRET], max_active_jobs: 1 },
      }),
      BACKENDS: JSON.stringify([{ name: "comfy", kind: "comfyui", url: sim.url, max_concurrency: 2 }]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await gw?.stop();
  await sim?.stop();
  await receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The example graph, small and quick unless `steps` says otherwise. */
function txt2img(prefix: string, steps = 3): Graph {
  const g = structuredClone(EXAMPLE);
  Object.assign((g["5"] as Graph[string]).inputs, { width: 64, height: 48 });
  Object.assign((g["3"] as Graph[string]).inputs, { steps });
  (g["9"] as Graph[string]).inputs.filename_prefix = prefix;
  return g;
}

/** The SDK as its README sets it up: the gateway as host, the API key as a Bearer token. */
async function sdk(key = KEY, clientId?: string): Promise<ComfyApi> {
  const api = new ComfyApi(gw.url, clientId, { credentials: { type: "bearer_token", token: key } });
  clients.push(api);
  api.init();
  await api.waitForReady();
  return api;
}

const auth = (key = KEY) => ({ authorization: `Bearer ${key}` });
const post = (path: string, body: unknown, key = KEY) => fetch(gw.url + path, { method: "POST", headers: auth(key), body: JSON.stringify(body) });
const get = (path: string, key = KEY) => fetch(gw.url + path, { headers: auth(key) });
type Entry = { prompt: unknown[]; outputs: Record<string, { images: { filename: string; subfolder: string; type: string }[] }>; status: { status_str: string; completed: boolean; messages: [string, unknown][] } };

async function historyOf(id: string, key = KEY, timeoutMs = 60_000): Promise<Entry> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const body = (await (await get(`/history/${id}`, key)).json()) as Record<string, Entry>;
    if (body[id]) return body[id];
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`prompt ${id} did not end`);
}

describe("the real @saintno/comfyui-sdk against the gateway", () => {
  it("queues a graph, follows its progress on the socket and reads its image back through /view", async () => {
    const api = await sdk();
    const workflow = new PromptBuilder(txt2img("sdk"), ["seed", "steps"], ["images"]).setInputNode("seed", "3.inputs.seed").setInputNode("steps", "3.inputs.steps").setOutputNode("images", "9").input("seed", 7).input("steps", 4);
    const progress: { value: number; max: number }[] = [];
    const result = await new CallWrapper(api, workflow).onProgress((p) => progress.push({ value: p.value, max: p.max })).run();
    expect(result).toBeTruthy();
    const images = (result as { images: { images: { filename: string; subfolder: string; type: string }[] } }).images.images;
    expect(images).toHaveLength(1);
    expect(images[0]?.type).toBe("output");
    const blob = await api.getImage(images[0] as { filename: string; subfolder: string; type: string });
    expect(pngSize(new Uint8Array(await blob.arrayBuffer()))).toEqual({ width: 64, height: 48 });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)?.max).toBe(4);
    // What the SDK offers for a checkpoint picker: the ComfyUI backends' own, through /object_info.
    expect(await api.getCheckpoints()).toContain("v1-5-pruned-emaonly.safetensors");
    expect((await api.getSystemStats()).system.os).toEqual(expect.any(String));
  });

  it("hands the SDK's onPreview the backend's sampling previews, to the prompt's own client only", async () => {
    await sim.config({ comfyui: { comfyPreviews: true } });
    try {
      const [api, bystander] = await Promise.all([sdk(), sdk()]);
      const unseen: Blob[] = [];
      bystander.on("b_preview", (ev) => unseen.push(ev.detail));
      const previews: Blob[] = [];
      const workflow = new PromptBuilder(txt2img("previews", 8), [], ["images"]).setOutputNode("images", "9");
      expect(await new CallWrapper(api, workflow).onPreview((blob) => previews.push(blob)).run()).toBeTruthy();
      expect(previews.length).toBeGreaterThan(0);
      // The simulator's preview: a 64 x 64 PNG, whole.
      for (const blob of previews) expect(pngSize(new Uint8Array(await blob.arrayBuffer()))).toEqual({ width: 64, height: 64 });
      expect(unseen).toEqual([]);
    } finally {
      await sim.config({ comfyui: { comfyPreviews: false } });
    }
  });

  it("keeps the SDK's socket alive while its prompt waits in line longer than the 10 s it allows a silent socket", { timeout: 90_000 }, async () => {
    // Two long prompts of another client take the backend's two slots. The SDK checks its socket
    // every 5 s and gives up on it after 10 s of silence: 20 s in line is sure to be seen.
    await sim.config({ comfyui: { msPerImage: 20_000 } });
    try {
      const blockers = await Promise.all([1, 2].map(async (n) => ((await (await post("/prompt", { prompt: txt2img(`blocker-${n}`), client_id: "someone-else" })).json()) as { prompt_id: string }).prompt_id));
      for (let i = 0; i < 100; i++) {
        const queue = (await (await get("/queue")).json()) as { queue_running: unknown[] };
        if (queue.queue_running.length === 2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await sim.config({ comfyui: { msPerImage: 1500 } });
      const api = await sdk();
      const failures: string[] = [];
      const workflow = new PromptBuilder(txt2img("patient"), [], ["images"]).setOutputNode("images", "9");
      const result = await new CallWrapper(api, workflow).onFailed((err) => failures.push(err.message)).run();
      expect(failures).toEqual([]);
      expect(result).toBeTruthy();
      for (const id of blockers) expect((await historyOf(id)).status.status_str).toBe("success");
    } finally {
      await sim.config({ comfyui: { msPerImage: 1500 } });
    }
  });

  it("lists the backends' model folders, a folder's files and embeddings, and the server's features, as the SDK asks for them", async () => {
    const api = await sdk();
    expect(await api.getModelTypes()).toEqual(expect.arrayContaining(["checkpoints", "loras"]));
    expect(await api.getModels("loras")).toEqual(expect.arrayContaining(["add_detail.safetensors"]));
    expect(await api.getEmbeddings()).toEqual(expect.arrayContaining(["EasyNegative"]));
    expect(await api.getFeatures()).toMatchObject({ max_upload_size: expect.any(Number) });
    // A folder no backend has is ComfyUI's 404, not an empty list.
    expect((await get("/models/no_such_folder")).status).toBe(404);
  });

  it("uploads an input image that a later prompt's LoadImage uses; its history keeps the graph as sent, which queues again", async () => {
    const api = await sdk();
    const uploaded = await api.uploadImage(encodePng(40, 24, () => [200, 10, 10]), "red.png", { subfolder: "mine" });
    expect(uploaded && uploaded.info).toMatchObject({ filename: "red.png", subfolder: "mine", type: "input" });
    const graph = titled({
      "1": { class_type: "LoadImage", inputs: { image: "mine/red.png" } },
      "2": { class_type: "SaveImage", inputs: { filename_prefix: "copy", images: ["1", 0] } },
    });
    let promptId = "";
    const result = await new CallWrapper(api, new PromptBuilder(graph, [], ["saved"]).setOutputNode("saved", "2")).onPending((id) => (promptId = id ?? "")).run();
    const saved = (result as { saved: { images: { filename: string; subfolder: string; type: string }[] } }).saved.images;
    const blob = await api.getImage(saved[0] as { filename: string; subfolder: string; type: string });
    expect(pngSize(new Uint8Array(await blob.arrayBuffer()))).toEqual({ width: 40, height: 24 });
    // A graph taken from the history (as ComfyUI's frontend re-queues one) names the file as the client did.
    const sent = (await historyOf(promptId)).prompt[2] as Record<string, { inputs: Record<string, unknown> }>;
    expect(sent["1"]?.inputs.image).toBe("mine/red.png");
    const again = await new CallWrapper(api, new PromptBuilder(sent as typeof graph, [], ["saved"]).setOutputNode("saved", "2")).run();
    expect(again).not.toBe(false);
  });

  it("interrupts the running prompt: the client hears execution_interrupted and its history says error", async () => {
    const api = await sdk();
    let failed: Error | undefined;
    let promptId: string | undefined;
    let running!: () => void;
    const started = new Promise<void>((resolve) => (running = resolve));
    const run = new CallWrapper(api, new PromptBuilder(txt2img("stop", 40), [], ["images"]).setOutputNode("images", "9"))
      .onPending((id) => (promptId = id))
      .onProgress(() => running())
      .onFailed((err) => (failed = err))
      .run();
    await started;
    await api.interrupt();
    expect(await run).toBe(false);
    expect(failed?.name).toBe("ExecutionInterruptedError");
    const entry = await historyOf(promptId ?? "");
    expect(entry.status).toMatchObject({ status_str: "error", completed: false });
    expect(entry.status.messages.map(([type]) => type)).toContain("execution_interrupted");
  });
});

describe("the ComfyUI front over raw HTTP and WebSocket", () => {
  it("runs script_examples/websockets_api_example.py's flow: its own prompt_id, the socket until executing null, history, /view; the prompt at /v1/jobs and its history entry posted signed", async () => {
    // As the script: a socket for its client id first (the key as ?token=, as ComfyUI-Login takes it), then the prompt with a uuid4 prompt_id.
    const socket = await openSocket(`${gw.url.replace("http", "ws")}/api/ws?clientId=raw&token=${KEY}`);
    const promptId = crypto.randomUUID();
    const res = await post("/api/prompt", { prompt: txt2img("hook"), prompt_id: promptId, client_id: "raw", extra_data: { webhook: `${receiver.url}/comfy` } });
    const queue = (await (await get("/queue")).json()) as { queue_running: unknown[][]; queue_pending: unknown[][] };
    expect([...queue.queue_running, ...queue.queue_pending].map((item) => item[1])).toContain(promptId);
    await socket.waitFor((m: SocketMessage) => m.type === "executing" && m.data.node === null && m.data.prompt_id === promptId, 60_000).finally(() => socket.close());
    expect(socket.messages.filter((m) => m.type === "progress").every((m) => m.data.prompt_id === promptId)).toBe(true);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { prompt_id: string; number: number; node_errors: object };
    expect(body).toEqual({ prompt_id: promptId, number: expect.any(Number), node_errors: {} });
    const runId = res.headers.get("x-easel-run-id") ?? "";

    const entry = await historyOf(promptId);
    expect(entry.status.status_str).toBe("success");
    expect(entry.prompt.slice(0, 2)).toEqual([body.number, promptId]);
    const image = entry.outputs["9"]?.images[0];
    expect(image).toMatchObject({ subfolder: "", type: "output" });
    const view = await get(`/view?filename=${image?.filename}&subfolder=&type=output`);
    expect(pngSize(new Uint8Array(await view.arrayBuffer()))).toEqual({ width: 64, height: 48 });
    // ComfyUI's annotated name says the type itself, as a graph's `name [output]` does.
    const annotated = await get(`/view?filename=${encodeURIComponent(`${image?.filename} [output]`)}`);
    expect(pngSize(new Uint8Array(await annotated.arrayBuffer()))).toEqual({ width: 64, height: 48 });
    expect(await (await get("/history?max_items=0")).json()).toEqual({});

    const job = (await (await get(`/v1/jobs/${runId}`)).json()) as { type: string; status: string; output: { node_id: string }[] };
    expect(job).toMatchObject({ type: "workflow", status: "succeeded", output: [{ node_id: "9" }] });

    const delivery = await receiver.waitFor((d) => d.path === "/comfy", 30_000);
    expect(delivery.verified).toEqual([true]);
    expect(delivery.json).toMatchObject({ prompt_id: promptId, status: { status_str: "success" }, outputs: { "9": { images: [{ filename: image?.filename }] } } });
  });

  it("runs script_examples/websockets_api_example_ws_images.py's flow: a SaveImageWebsocket's images come as PNG frames while it is the node executing, and are the job's outputs", async () => {
    const clientId = crypto.randomUUID();
    const socket = await openSocket(`${gw.url.replace("http", "ws")}/ws?clientId=${clientId}&token=${KEY}`);
    const graph: Graph = txt2img("unused");
    delete graph["9"];
    Object.assign((graph["5"] as Graph[string]).inputs, { batch_size: 2 });
    graph.save_image_websocket_node = { class_type: "SaveImageWebsocket", inputs: { images: ["8", 0] }, _meta: { title: "SaveImageWebsocket" } };
    const res = await post("/prompt", { prompt: graph, client_id: clientId });
    expect(res.status).toBe(200);
    const { prompt_id } = (await res.json()) as { prompt_id: string };
    await socket.waitFor((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === prompt_id, 60_000).finally(() => socket.close());
    // The script's own loop: binary frames count while the node its prompt last said it runs is the saver.
    const images: Buffer[] = [];
    let current = "";
    for (const m of socket.received) {
      if (!Buffer.isBuffer(m)) {
        if (m.type === "executing" && m.data.prompt_id === prompt_id) {
          if (m.data.node === null) break;
          current = String(m.data.node);
        }
      } else if (current === "save_image_websocket_node") images.push(m);
    }
    expect(images.map((f) => [...f.subarray(0, 8)])).toEqual([
      [0, 0, 0, 1, 0, 0, 0, 2],
      [0, 0, 0, 1, 0, 0, 0, 2],
    ]);
    const job = (await (await get(`/v1/jobs/${res.headers.get("x-easel-run-id") ?? ""}`)).json()) as { status: string; output: { node_id: string; url: string }[] };
    expect(job.status).toBe("succeeded");
    expect(job.output.map((o) => o.node_id)).toEqual(["save_image_websocket_node", "save_image_websocket_node"]);
    const stored = await Promise.all(job.output.map(async (o) => Buffer.from(await (await fetch(o.url)).arrayBuffer())));
    expect(images.map((f) => f.subarray(8))).toEqual(stored);
    expect(stored.map((png) => pngSize(new Uint8Array(png)))).toEqual([
      { width: 64, height: 48 },
      { width: 64, height: 48 },
    ]);
  });

  it("sends the prompt's extra_data to the backend, Comfy.org's credentials too, but never shows those back: history, queue, webhook, /v1", async () => {
    const marker = crypto.randomUUID();
    const extra_data = { extra_pnginfo: { workflow: { marker } }, api_key_comfy_org: "comfyui-SECRET-KEY", auth_token_comfy_org: "SECRET-TOKEN", webhook: `${receiver.url}/extra` };
    const res = await post("/prompt", { prompt: txt2img("extra", 8), client_id: "extra", extra_data });
    const { prompt_id } = (await res.json()) as { prompt_id: string };
    const queueText = JSON.stringify(await (await get("/queue")).json());
    expect(queueText).toContain(marker);
    const entry = await historyOf(prompt_id);
    expect(entry.prompt[3]).toEqual({ extra_pnginfo: { workflow: { marker } }, webhook: `${receiver.url}/extra`, client_id: "extra" });
    const delivery = await receiver.waitFor((d) => d.path === "/extra", 30_000);
    const runId = res.headers.get("x-easel-run-id") ?? "";
    const v1 = [await get(`/v1/jobs/${runId}`), await get(`/v1/jobs/${runId}/events`)];
    const shown = [queueText, JSON.stringify(entry), JSON.stringify(delivery.json), ...(await Promise.all(v1.map((r) => r.text())))];
    for (const text of shown) expect(text).not.toContain("SECRET");
    // The backend got them all, with its own client id, but not Easel's webhook (the simulator keeps extra_data as sent).
    const onBackend = Object.values((await (await fetch(`${sim.url}/history`)).json()) as Record<string, Entry>).find((e) => JSON.stringify(e.prompt[3]).includes(marker));
    expect(onBackend?.prompt[3]).toEqual({ extra_pnginfo: { workflow: { marker } }, api_key_comfy_org: "comfyui-SECRET-KEY", auth_token_comfy_org: "SECRET-TOKEN", client_id: expect.any(String) });
  });

  it("never lets a graph load a file the shared backend holds for another job: its uploads or its outputs", async () => {
    const form = new FormData();
    form.append("image", new Blob([encodePng(8, 8, () => [1, 2, 3])]), "private.png");
    expect((await fetch(`${gw.url}/upload/image`, { method: "POST", headers: auth(), body: form })).status).toBe(200);
    const loads = (image: string, classType = "LoadImage") => ({ "1": { class_type: classType, inputs: { image } }, "2": { class_type: "SaveImage", inputs: { filename_prefix: "private", images: ["1", 0] } } });
    const { prompt_id } = (await (await post("/prompt", { prompt: loads("private.png") })).json()) as { prompt_id: string };
    expect((await historyOf(prompt_id)).status.status_str).toBe("success");
    // On the backend, the job's copy of the upload and its output sit beside every other job's files.
    const onBackend = (await (await fetch(`${sim.url}/object_info/LoadImage`)).json()) as { LoadImage: { input: { required: { image: [string[]] } } } };
    const copy = onBackend.LoadImage.input.required.image[0].find((name) => name.endsWith("-private.png"));
    expect(copy).toBeDefined();
    for (const [image, classType] of [[copy, "LoadImage"], [`${copy} [input]`, "LoadImage"], ["private_00001_.png [output]", "LoadImage"], ["../output/private_00001_.png", "LoadImage"], ["private_00001_.png", "LoadImageOutput"]] as const) {
      // (The simulator, as an older ComfyUI, has no LoadImageOutput: /prompt refuses that one as an unknown node.)
      if (classType === "LoadImage") {
        const res = await post("/prompt", { prompt: loads(image ?? "", classType) }, OTHER);
        expect(res.status, image).toBe(400);
        expect(JSON.stringify(await res.json())).toContain("1.inputs.image");
      }
      const v1 = await post("/v1/jobs", { type: "workflow", workflow: loads(image ?? "", classType) }, OTHER);
      expect(v1.status, image).toBe(422);
    }
    // The backend's own input files stay loadable.
    expect((await post("/v1/jobs", { type: "workflow", workflow: loads("example.png") }, OTHER)).status).toBe(202);
  });

  it("refuses a graph that loads more uploaded files than a job takes, naming the node, before reading them all", async () => {
    const names = Array.from({ length: 17 }, (_, i) => `many-${i}.png`);
    for (const name of names) {
      const form = new FormData();
      form.append("image", new Blob([encodePng(8, 8, () => [9, 9, 9])]), name);
      expect((await fetch(`${gw.url}/upload/image`, { method: "POST", headers: auth(), body: form })).status).toBe(200);
    }
    const graph: Record<string, Omit<Node, "_meta">> = Object.fromEntries(names.map((image, i) => [String(i + 1), { class_type: "LoadImage", inputs: { image } }]));
    graph["99"] = { class_type: "SaveImage", inputs: { filename_prefix: "many", images: ["1", 0] } };
    const res = await post("/prompt", { prompt: graph });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain("17.inputs.image");
    // Sixteen are one job's worth.
    delete graph["17"];
    expect((await post("/prompt", { prompt: graph })).status).toBe(200);
  });

  it("never shows one tenant's prompts, files or socket messages to another, nor lets it interrupt them", async () => {
    const mine = await openSocket(`${gw.url.replace("http", "ws")}/ws?clientId=shared&token=${KEY}`);
    const theirs = await openSocket(`${gw.url.replace("http", "ws")}/ws?clientId=shared`, auth(OTHER));
    try {
      const res = await post("/prompt", { prompt: txt2img("secret"), client_id: "shared" });
      const { prompt_id } = (await res.json()) as { prompt_id: string };
      // While it waits or runs: its history is `{}` to its tenant, and it is nobody else's to see or stop.
      expect(await (await get(`/history/${prompt_id}`)).json()).toEqual({});
      // To another tenant it is as an id nobody has: a 404.
      expect((await get(`/history/${prompt_id}`, OTHER)).status).toBe(404);
      const theirQueue = (await (await get("/queue", OTHER)).json()) as { queue_running: unknown[][]; queue_pending: unknown[][] };
      expect([...theirQueue.queue_running, ...theirQueue.queue_pending].map((item) => item[1])).not.toContain(prompt_id);
      expect((await post("/interrupt", { prompt_id }, OTHER)).status).toBe(200);
      expect((await post("/interrupt", {}, OTHER)).status).toBe(200);
      expect((await post("/queue", { delete: [prompt_id] }, OTHER)).status).toBe(200);

      await mine.waitFor((m: SocketMessage) => m.type === "executing" && m.data.node === null && m.data.prompt_id === prompt_id, 60_000);
      const entry = await historyOf(prompt_id);
      expect(entry.status.status_str).toBe("success");
      const file = entry.outputs["9"]?.images[0]?.filename ?? "";
      expect((await get(`/history/${prompt_id}`, OTHER)).status).toBe(404);
      expect((await post("/history", { delete: [prompt_id] }, OTHER)).status).toBe(200);
      expect((await post("/history", { clear: true }, OTHER)).status).toBe(200);
      expect(Object.keys((await (await get("/history?max_items=50", OTHER)).json()) as object)).not.toContain(prompt_id);
      expect((await get(`/view?filename=${file}&type=output`, OTHER)).status).toBe(404);
      expect((await get(`/v1/jobs/${prompt_id}`, OTHER)).status).toBe(404);
      expect(theirs.messages.filter((m) => m.data.prompt_id === prompt_id)).toEqual([]);
      expect(theirs.messages.every((m) => m.type === "status")).toBe(true);
      expect(Object.keys((await (await get("/history?max_items=50")).json()) as object)).toContain(prompt_id);
    } finally {
      mine.close();
      theirs.close();
    }
  });

  it("cancels a pending prompt with POST /queue {delete}, and only that one", async () => {
    // Two slots: two long prompts run, the third waits.
    const ids: string[] = [];
    for (const prefix of ["long1", "long2", "waits"]) ids.push(((await (await post("/prompt", { prompt: txt2img(prefix, 40) })).json()) as { prompt_id: string }).prompt_id);
    const waiting = ids[2] ?? "";
    const queue = (await (await get("/queue")).json()) as { queue_pending: unknown[][] };
    expect(queue.queue_pending.map((item) => item[1])).toContain(waiting);
    expect((await post("/queue", { delete: [waiting] })).status).toBe(200);
    const entry = await historyOf(waiting);
    expect(entry.status.status_str).toBe("error");
    expect(((await (await get(`/v1/jobs/${waiting}`)).json()) as { status: string }).status).toBe("canceled");
    expect((await post("/interrupt", {})).status).toBe(200);
    for (const id of ids.slice(0, 2)) expect((await historyOf(id)).status.messages.map(([t]) => t)).toContain("execution_interrupted");
  });

  it("refuses a node no ComfyUI backend defines as ComfyUI does, with a 400 before any job", async () => {
    const graph = txt2img("unknown");
    (graph["8"] as Node).class_type = "NoSuchDecoder";
    const res = await post("/prompt", { prompt: graph });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: { type: "missing_node_type", message: "Node 'NoSuchDecoder' not found. The custom node may not be installed.", details: "Node ID '#8'", extra_info: { node_id: "8", class_type: "NoSuchDecoder", node_title: "NoSuchDecoder" } },
      node_errors: {},
    });
  });

  it("refuses a graph ComfyUI would refuse (a required input missing) with its 400 and node_errors, before any job", async () => {
    const graph = txt2img("no steps");
    delete (graph["3"] as Node).inputs.steps;
    const before = (await (await get("/queue")).json()) as { queue_running: unknown[]; queue_pending: unknown[] };
    const res = await post("/prompt", { prompt: graph });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { type: string }; node_errors: Record<string, { errors: { type: string; details: string }[]; dependent_outputs: string[]; class_type: string }> };
    expect(body.error.type).toBe("prompt_outputs_failed_validation");
    expect(body.node_errors["3"]).toMatchObject({ errors: [{ type: "required_input_missing", details: "steps" }], class_type: "KSampler" });
    expect(body.node_errors["3"]?.dependent_outputs.length).toBe(1);
    const after = (await (await get("/queue")).json()) as { queue_running: unknown[]; queue_pending: unknown[] };
    expect(after.queue_running.length + after.queue_pending.length).toBe(before.queue_running.length + before.queue_pending.length);
  });

  it("answers a tenant over its max_active_jobs with a 429 in ComfyUI's shape, creating nothing", async () => {
    const first = await post("/prompt", { prompt: txt2img("cap1", 40) }, CAPPED);
    expect(first.status).toBe(200);
    const second = await post("/prompt", { prompt: txt2img("cap2") }, CAPPED);
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).toBeTruthy();
    expect(await second.json()).toMatchObject({ error: { type: "too_many_active_jobs", message: expect.any(String) } });
    const queue = (await (await get("/queue", CAPPED)).json()) as { queue_running: unknown[][]; queue_pending: unknown[][] };
    expect(queue.queue_running.length + queue.queue_pending.length).toBe(1);
    expect((await post("/interrupt", {}, CAPPED)).status).toBe(200);
  });
});

/**
 * `workflow` jobs over HTTP against a real gateway and the simulator's ComfyUI server: a graph
 * runs and its outputs come back with their node ids, a bad graph or an unknown checkpoint is
 * refused before anything is queued, input images reach LoadImage, progress names the node, an
 * execution_error fails without failover, and an SD-on-EKS pipeline task ends with its notification.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { api, pngSize, waitForJob, type Api, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";

const KEY = "sk_workflow";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type WorkflowJob = Omit<JobView, "output" | "progress"> & {
  output: (JobView["output"][number] & { node_id?: string })[];
  progress: (NonNullable<JobView["progress"]> & { node?: string }) | null;
};
type Refusal = { error: { code: string; message: string; details: { path: string; message: string }[] } };
type Graph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

/** The example graph the README's curl sends. */
const example = (): Graph => JSON.parse(readFileSync(resolve(import.meta.dirname, "../../examples/comfyui-txt2img.json"), "utf8")) as Graph;
const txt2img = (over: (g: Graph) => void = () => undefined): Graph => {
  const g = example();
  over(g);
  return g;
};

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let client: Api;
let dir: string;

const prompts = async (): Promise<number> => Object.values((await sim.stats()).byPrompt).reduce((a, b) => a + b, 0);
const submit = async (body: unknown): Promise<WorkflowJob> => {
  const res = await client.post("/v1/jobs", body);
  expect(res.status, await res.clone().text()).toBe(202);
  return (await res.json()) as WorkflowJob;
};
const done = async (id: string) => (await waitForJob(client, id, 60_000)) as unknown as WorkflowJob;

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } });
  receiver = await startReceiver({ secrets: [SECRET] });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-workflow-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ wf: { api_keys: [KEY], webhook_secrets: [SECRET], default_webhook: `${receiver.url}/sns` } }),
      // Two names for the one ComfyUI server: a job that failed over would show as a second prompt there.
      BACKENDS: JSON.stringify([
        { name: "comfy-a", kind: "comfyui", url: sim.url },
        { name: "comfy-b", kind: "comfyui", url: sim.url },
        // A worker-comfyui endpoint cannot list its models: they are configured. Only pinned jobs go there.
        { name: "pod-comfy", kind: "runpod-comfyui", url: `${sim.url}/v2/comfy-endpoint`, models: ["v1-5-pruned-emaonly.safetensors"], types: ["workflow"] },
      ]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
  client = api(gw.url, KEY);
  // The backends' checkpoint lists are read once here, so a submit's checkpoint check finds them known.
  expect((await client.get("/v1/models")).status).toBe(200);
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("workflow jobs on a ComfyUI backend", () => {
  it("run the graph and return each saved image with its node_id, downloadable as PNG", async () => {
    // Two savers, listed (and so run) "out-10" first: outputs still come in node-id order, numbers compared as numbers.
    const graph = txt2img((g) => {
      delete g["9"];
      g["out-10"] = { class_type: "SaveImage", inputs: { filename_prefix: "second", images: ["8", 0] } };
      g["out-9"] = { class_type: "SaveImage", inputs: { filename_prefix: "first", images: ["8", 0] } };
    });
    const job = await submit({ type: "workflow", workflow: graph, track_id: "wf-1" });
    expect(job).toMatchObject({ type: "workflow", status: "queued", seed: null, track_id: "wf-1" });
    const ended = await done(job.id);
    expect(ended.status, JSON.stringify(ended.error)).toBe("succeeded");
    expect(ended.output.map((o) => o.node_id)).toEqual(["out-9", "out-10"]);
    for (const o of ended.output) {
      expect(o).toMatchObject({ content_type: "image/png", seed: null });
      const bytes = new Uint8Array(await (await fetch(o.url)).arrayBuffer());
      expect(pngSize(bytes)).toEqual({ width: o.width, height: o.height });
    }
  });

  it("run a graph too large to keep with the job (it waits in R2) as sent", async () => {
    // 300 KiB of prompt: past what stays inline, well within the 15 MiB body.
    const text = "a lighthouse at dusk, ".repeat(14_000);
    const graph = txt2img((g) => void (g["6"] = { class_type: "CLIPTextEncode", inputs: { text, clip: ["4", 1] } }));
    const before = await prompts();
    const ended = await done((await submit({ type: "workflow", workflow: graph })).id);
    expect(ended.status, JSON.stringify(ended.error)).toBe("succeeded");
    expect(ended.output.map((o) => o.node_id)).toEqual(["9"]);
    expect(await prompts()).toBe(before + 1);
  });

  it("refuse a bad graph with a 422 naming the node, and queue nothing at the backend", async () => {
    const before = await prompts();
    const graph = txt2img((g) => {
      g["8"] = { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["40", 2] } };
    });
    const res = await client.post("/v1/jobs", { type: "workflow", workflow: graph });
    expect(res.status).toBe(422);
    expect(((await res.json()) as Refusal).error.details).toEqual([{ path: "workflow.8.inputs.vae", message: 'links to node "40", which is not in the workflow' }]);
    const saves = await client.post("/v1/jobs", { type: "workflow", workflow: txt2img((g) => void (g["9"] = { class_type: "PreviewImage", inputs: { images: ["8", 0] } })) });
    expect(saves.status).toBe(422);
    expect(await prompts()).toBe(before);
  });

  it("refuse a checkpoint no backend lists with a 422 naming its node", async () => {
    const before = await prompts();
    const graph = txt2img((g) => void (g["4"] = { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "no-such-model.safetensors" } }));
    const res = await client.post("/v1/jobs", { type: "workflow", workflow: graph });
    expect(res.status).toBe(422);
    expect(((await res.json()) as Refusal).error.details).toEqual([{ path: "workflow.4.inputs.ckpt_name", message: 'unknown checkpoint "no-such-model.safetensors": no backend lists it' }]);
    expect(await prompts()).toBe(before);
  });

  it("hand each input image to LoadImage under its name", async () => {
    const cat = Buffer.from(encodePng(96, 64, (x, y) => [x * 2, y * 3, 90])).toString("base64");
    const graph: Graph = {
      "1": { class_type: "LoadImage", inputs: { image: "cat.png" } },
      "2": { class_type: "SaveImage", inputs: { filename_prefix: "cat", images: ["1", 0] } },
    };
    const ended = await done((await submit({ type: "workflow", workflow: graph, images: [{ name: "cat.png", image: `data:image/png;base64,${cat}` }] })).id);
    expect(ended.status, JSON.stringify(ended.error)).toBe("succeeded");
    expect(ended.output).toMatchObject([{ node_id: "2", width: 96, height: 64 }]);
  });

  it("report progress with the node being run", async () => {
    await sim.config({ msPerImage: 1500 });
    try {
      const ended = await done((await submit({ type: "workflow", workflow: example() })).id);
      expect(ended.status, JSON.stringify(ended.error)).toBe("succeeded");
      const { data } = (await (await client.get(`/v1/jobs/${ended.id}/events`)).json()) as { data: { type: string; data: Record<string, unknown> }[] };
      const progress = data.filter((e) => e.type === "job.progress").map((e) => e.data);
      expect(progress.length).toBeGreaterThan(0);
      // The example's sampler is node "3".
      expect(progress.some((p) => p.node === "3")).toBe(true);
    } finally {
      await sim.config({ msPerImage: 20 });
    }
  });

  it("fail on an execution_error with backend_error and the node's message, never failing over", async () => {
    await sim.config({ comfyui: { errorRate: 1 } });
    try {
      const before = await prompts();
      const ended = await done((await submit({ type: "workflow", workflow: example() })).id);
      expect(ended.status).toBe("failed");
      expect(ended.error?.code).toBe("backend_error");
      expect(ended.error?.message).toContain("simulated backend failure");
      // The node ComfyUI said failed (the simulator fails the sampler), for the ComfyUI front's execution_error.
      expect(ended.error).toMatchObject({ node: { id: "3", type: "KSampler" } });
      expect(await prompts()).toBe(before + 1);
    } finally {
      await sim.config({ comfyui: { errorRate: 0 } });
    }
  });
});

describe("workflow jobs on a worker-comfyui endpoint", () => {
  it("run the graph with its input images and return its outputs", async () => {
    const cat = Buffer.from(encodePng(80, 48, (x, y) => [x * 3, y * 5, 10])).toString("base64");
    const graph: Graph = {
      "1": { class_type: "LoadImage", inputs: { image: "cat.png" } },
      "2": { class_type: "SaveImage", inputs: { filename_prefix: "cat", images: ["1", 0] } },
    };
    const ended = await done((await submit({ type: "workflow", workflow: graph, backend: "pod-comfy", images: [{ name: "cat.png", image: cat }] })).id);
    expect(ended.status, JSON.stringify(ended.error)).toBe("succeeded");
    // worker-comfyui names its files, not their nodes: the node is told by its filename_prefix.
    expect(ended).toMatchObject({ backend: "pod-comfy", output: [{ content_type: "image/png", width: 80, height: 48, seed: null, node_id: "2" }] });
  });

  it("return a SaveImageWebsocket's images (queued as a SaveImage) under its own node, beside a SaveImage's", async () => {
    const cat = Buffer.from(encodePng(80, 48, (x, y) => [x * 3, y * 5, 10])).toString("base64");
    const graph: Graph = {
      "1": { class_type: "LoadImage", inputs: { image: "cat.png" } },
      "2": { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["1", 0] } },
      ws: { class_type: "SaveImageWebsocket", inputs: { images: ["1", 0] } },
    };
    for (const pad of ["", "x".repeat(300 * 1024)]) {
      // Past 256 KiB the graph is kept in R2, not with the job: its nodes still name the files.
      const padded: Graph = { ...graph, "1": { class_type: "LoadImage", inputs: { image: "cat.png", ...(pad ? { pad } : {}) } } };
      const ended = await done((await submit({ type: "workflow", workflow: padded, backend: "pod-comfy", images: [{ name: "cat.png", image: cat }] })).id);
      expect(ended.status, JSON.stringify(ended.error)).toBe("succeeded");
      expect(ended.output.map((o) => o.node_id).sort()).toEqual(["2", "ws"]);
    }
  });

  it("refuse a checkpoint the pinned endpoint does not list (though other backends do), naming the node", async () => {
    const graph = txt2img((g) => void (g["4"] = { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "chilloutmix-Ni.safetensors" } }));
    const res = await client.post("/v1/jobs", { type: "workflow", workflow: graph, backend: "pod-comfy" });
    expect(res.status).toBe(422);
    expect(((await res.json()) as Refusal).error.details).toEqual([{ path: "workflow.4.inputs.ckpt_name", message: 'unknown checkpoint "chilloutmix-Ni.safetensors": backend "pod-comfy" does not list it' }]);
  });
});

describe("a graph ComfyUI refuses", () => {
  it("fails the job at once with invalid_request naming the node, sent to one backend only", async () => {
    const asked = async () => (await sim.stats()).requests["/prompt"] ?? 0;
    const before = await asked();
    const graph = txt2img((g) => void (g["5"] = { class_type: "NoSuchLatent", inputs: { width: 512, height: 512, batch_size: 1 } }));
    const ended = await done((await submit({ type: "workflow", workflow: graph })).id);
    expect(ended.status).toBe("failed");
    expect(ended.error?.code).toBe("invalid_request");
    expect(ended.error?.message).toContain("NoSuchLatent");
    expect(await asked()).toBe(before + 1);
  });
});

describe("canonical jobs where only ComfyUI backends serve them", () => {
  it("refuse a sampler ComfyUI has no match for with a 422 naming sampler, before anything is queued", async () => {
    const before = await prompts();
    const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "a cat", sampler: "Restart" });
    expect(res.status).toBe(422);
    expect(((await res.json()) as Refusal).error.details).toEqual([{ path: "sampler", message: '"Restart" has no ComfyUI equivalent, and only ComfyUI backends serve this job' }]);
    expect(await prompts()).toBe(before);
  });
});

describe("SD-on-EKS pipeline tasks", () => {
  it("run its own test request's graph and end with its notification", async () => {
    const body = readFileSync(resolve(import.meta.dirname, "../fixtures/sd-on-eks/v1alpha2/pipeline.json"), "utf8");
    const res = await fetch(`${gw.url}/prod/v1alpha2/`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": KEY }, body });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ id_task: "test-pipeline", runtime: "sdruntime", output_location: expect.stringMatching(/\/output\/test-pipeline$/) });
    const note = await receiver.waitFor((d) => (d.json as { id?: string } | undefined)?.id === "test-pipeline", 60_000);
    expect(note.verified).toEqual([true]);
    expect(note.json).toMatchObject({ id: "test-pipeline", result: true, context: "" });
    const urls = (note.json as { image_url: string[] }).image_url;
    expect(urls).toHaveLength(1);
    expect(pngSize(new Uint8Array(await (await fetch(urls[0] ?? "")).arrayBuffer()))).toEqual({ width: 512, height: 512 });
  });
});

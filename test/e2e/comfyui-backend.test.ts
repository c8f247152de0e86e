/**
 * Canonical jobs on ComfyUI backends, over HTTP against the simulator's ComfyUI server and
 * worker-comfyui endpoint: the graphs Easel builds run there, fail over from A1111, cancel only
 * their own prompt, show progress, and re-attach after a restart without queuing the prompt twice.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { promptIdOf } from "../../src/backends/comfyui-api";
import { api, pngSize, waitForJob, waitForStatus, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
let client: ReturnType<typeof api>;

const COMFY_KEY = "comfy-proxy-key";

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20 }), SIM_COMFYUI_API_KEY: COMFY_KEY } });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-comfyui-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ acme: { api_keys: ["sk_acme"] } }),
      BACKENDS: JSON.stringify([
        // Refuses every connection: a job routed here first fails over to ComfyUI.
        { name: "dead-a1111", kind: "a1111", url: "http://127.0.0.1:9", types: ["txt2img"], models: ["v1-5-pruned-emaonly"] },
        { name: "comfy", kind: "comfyui", url: sim.url, api_key: COMFY_KEY, timeout_s: 120 },
        { name: "pod-comfy", kind: "runpod-comfyui", url: `${sim.url}/v2/comfy-endpoint`, models: ["v1-5-pruned-emaonly.safetensors"], timeout_s: 120 },
        // worker-comfyui answering with S3 links, and the 4.x form (the last image as `message`).
        { name: "pod-comfy-s3", kind: "runpod-comfyui", url: `${sim.url}/v2/comfy-s3`, models: ["v1-5-pruned-emaonly.safetensors"], timeout_s: 120 },
        { name: "pod-comfy-v4", kind: "runpod-comfyui", url: `${sim.url}/v2/comfy-v4`, models: ["v1-5-pruned-emaonly.safetensors"], timeout_s: 120 },
      ]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
  client = api(gw.url, "sk_acme");
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const png = (w: number, h: number) => Buffer.from(encodePng(w, h, (x, y) => [x * 3, y * 3, 128])).toString("base64");

const submit = async (body: Record<string, unknown>): Promise<JobView> => {
  // An upscale's size comes from its `scale`.
  const size = body.type === "upscale" ? {} : { prompt: "a cat wizard", width: 64, height: 64 };
  const res = await client.post("/v1/jobs", { ...size, ...body });
  expect(res.status, await res.clone().text()).toBe(202);
  return (await res.json()) as JobView;
};
const eventsOf = async (id: string) => ((await (await client.get(`/v1/jobs/${id}/events`)).json()) as { data: { type: string; data: Record<string, unknown> }[] }).data;
const sizesOf = async (job: JobView) => Promise.all(job.output.map(async (o) => pngSize(new Uint8Array(await (await fetch(o.url)).arrayBuffer()))));

/** A prompt of a neighbour (another client of the same ComfyUI), queued straight to the server. */
async function neighbourPrompt(prefix: string): Promise<string> {
  const graph = JSON.parse(readFileSync(new URL("../../examples/comfyui-txt2img.json", import.meta.url), "utf8")) as Record<string, { inputs: Record<string, unknown> }>;
  Object.assign(graph["5"]?.inputs ?? {}, { width: 64, height: 64 });
  Object.assign(graph["9"]?.inputs ?? {}, { filename_prefix: prefix });
  const res = await fetch(`${sim.url}/prompt`, { method: "POST", headers: { authorization: `Bearer ${COMFY_KEY}`, "content-type": "application/json" }, body: JSON.stringify({ prompt: graph, client_id: "neighbour" }) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { prompt_id: string }).prompt_id;
}
const historyStatus = async (promptId: string) => {
  const res = await fetch(`${sim.url}/history/${promptId}`, { headers: { authorization: `Bearer ${COMFY_KEY}` } });
  return ((await res.json()) as Record<string, { status: { status_str: string } }>)[promptId]?.status.status_str;
};
async function until(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not ${what} within ${ms} ms`);
}

describe("canonical jobs on a ComfyUI server", () => {
  it("fails over from an A1111 that cannot be reached to ComfyUI", async () => {
    const job = await submit({ type: "txt2img", model: "v1-5-pruned-emaonly", seed: 5 });
    const done = await waitForJob(client, job.id, 60_000);
    expect(done, JSON.stringify(done.error)).toMatchObject({ status: "succeeded", backend: "comfy" });
    expect(done.output.map((o) => o.seed)).toEqual([5]);
    const attempts = (await eventsOf(job.id)).filter((e) => e.type === "attempt.failed" || e.type === "attempt.started").map((e) => [e.type, e.data.backend]);
    expect(attempts).toEqual([
      ["attempt.started", "dead-a1111"],
      ["attempt.failed", "dead-a1111"],
      ["attempt.started", "comfy"],
    ]);
  });

  it("runs txt2img as one KSampler per sample: seed, seed + 1, at the asked size", async () => {
    await sim.reset();
    const job = await submit({ type: "txt2img", backend: "comfy", samples: 2, seed: 7, sampler: "DPM++ 2M Karras", model: "v1-5-pruned-emaonly" });
    const done = await waitForJob(client, job.id, 60_000);
    expect(done).toMatchObject({ status: "succeeded", backend: "comfy" });
    expect(done.output.map((o) => o.seed)).toEqual([7, 8]);
    expect(await sizesOf(done)).toEqual([
      { width: 64, height: 64 },
      { width: 64, height: 64 },
    ]);
    // The attempt's prompt was queued once, under the id derived from it.
    expect((await sim.stats()).byPrompt[await promptIdOf(`${job.id}-1`)]).toBe(1);
  });

  it("runs img2img from the uploaded init image and upscale to the asked size", async () => {
    const img = await submit({ type: "img2img", backend: "comfy", init_image: png(64, 64), strength: 0.5, seed: 3, width: 64, height: 96 });
    const up = await submit({ type: "upscale", backend: "comfy", image: png(64, 48), scale: 2 });
    const [imgDone, upDone] = await Promise.all([waitForJob(client, img.id, 60_000), waitForJob(client, up.id, 60_000)]);
    expect(imgDone.status, JSON.stringify(imgDone.error)).toBe("succeeded");
    expect(imgDone.output.map((o) => o.seed)).toEqual([3]);
    expect(await sizesOf(imgDone)).toEqual([{ width: 64, height: 96 }]);
    expect(upDone.status, JSON.stringify(upDone.error)).toBe("succeeded");
    expect(upDone.output.map((o) => o.seed)).toEqual([null]);
    expect(await sizesOf(upDone)).toEqual([{ width: 128, height: 96 }]);
  });

  it("upscales with an upscale model the server lists, then to the exact size", async () => {
    const job = await submit({ type: "upscale", backend: "comfy", image: png(64, 48), scale: 3, upscaler: "RealESRGAN_x2plus" });
    const done = await waitForJob(client, job.id, 60_000);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(await sizesOf(done)).toEqual([{ width: 192, height: 144 }]);
  });

  it("serves a dialect's job too: A1111's txt2img, answered with its images", async () => {
    const res = await fetch(`${gw.url}/sdapi/v1/txt2img`, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from("webuiapi-user:sk_acme").toString("base64")}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt: "a dialect's cat", width: 64, height: 64, batch_size: 2, seed: 9, sampler_name: "Euler a" }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { images: string[]; info: string };
    expect(body.images.map((b) => pngSize(Buffer.from(b, "base64")))).toEqual([
      { width: 64, height: 64 },
      { width: 64, height: 64 },
    ]);
    expect((JSON.parse(body.info) as { all_seeds: number[] }).all_seeds).toEqual([9, 10]);
  });

  it("shows the sampler's preview as A1111's /sdapi/v1/progress current_image while an A1111 txt2img runs on ComfyUI", async () => {
    await sim.config({ comfyui: { msPerImage: 4_000, comfyPreviews: true } });
    const auth = { authorization: `Basic ${Buffer.from("webuiapi-user:sk_acme").toString("base64")}`, "content-type": "application/json" };
    try {
      const generation = fetch(`${gw.url}/sdapi/v1/txt2img`, { method: "POST", headers: auth, body: JSON.stringify({ prompt: "previewed", width: 64, height: 64, steps: 20, override_settings: { sd_model_checkpoint: "v1-5-pruned-emaonly" } }) });
      let image: string | null = null;
      await until(async () => {
        image = ((await (await fetch(`${gw.url}/sdapi/v1/progress`, { headers: auth })).json()) as { current_image: string | null }).current_image;
        return image !== null;
      }, "a preview");
      // The simulator's preview: a 64 x 64 PNG.
      expect(pngSize(Buffer.from(image ?? "", "base64"))).toEqual({ width: 64, height: 64 });
      expect((await generation).status).toBe(200);
    } finally {
      await sim.config({ comfyui: { msPerImage: 20, comfyPreviews: false } });
    }
  });

  it("shows the prompt's progress while it runs", async () => {
    await sim.config({ comfyui: { msPerImage: 4_000 } });
    try {
      const job = await submit({ type: "txt2img", backend: "comfy", steps: 20 });
      let seen: JobView["progress"] = null;
      await until(async () => {
        const view = (await (await client.get(`/v1/jobs/${job.id}`)).json()) as JobView;
        seen = view.progress;
        return seen !== null && seen.fraction > 0;
      }, "showing progress");
      expect(seen).toMatchObject({ steps: 20 });
      const done = await waitForJob(client, job.id, 60_000);
      expect(done.status).toBe("succeeded");
      expect(done.progress).toBeNull();
      expect((await eventsOf(job.id)).some((e) => e.type === "job.progress")).toBe(true);
    } finally {
      await sim.config({ comfyui: { msPerImage: 20 } });
    }
  });

  it("cancels its own prompt only: a neighbour's prompt on the same server runs on", async () => {
    await sim.config({ comfyui: { msPerImage: 3_000 } });
    try {
      // Running: interrupted by its prompt_id, while the neighbour's waits behind it.
      const running = await submit({ type: "txt2img", backend: "comfy", prompt: "mine, running" });
      await waitForStatus(client, running.id, "running");
      const runningPrompt = await promptIdOf(`${running.id}-1`);
      await until(async () => (await sim.stats()).byPrompt[runningPrompt] === 1, "queued");
      const behind = await neighbourPrompt("neighbour-behind");
      expect((await client.post(`/v1/jobs/${running.id}/cancel`)).status).toBeLessThan(300);
      await until(async () => (await historyStatus(runningPrompt)) === "error", "interrupted");
      await until(async () => (await historyStatus(behind)) === "success", "the neighbour's prompt done", 60_000);

      // Waiting in ComfyUI's queue behind a neighbour: taken out of the queue, never run.
      const ahead = await neighbourPrompt("neighbour-ahead");
      const waiting = await submit({ type: "txt2img", backend: "comfy", prompt: "mine, waiting" });
      const waitingPrompt = await promptIdOf(`${waiting.id}-1`);
      await until(async () => (await sim.stats()).byPrompt[waitingPrompt] === 1, "queued");
      expect((await client.post(`/v1/jobs/${waiting.id}/cancel`)).status).toBeLessThan(300);
      // Its slot comes back as ComfyUI takes the prompt out (the queue's change on the socket), not
      // once the quiet wait runs out: the next job's prompt is queued while the neighbour's still runs.
      const next = await submit({ type: "txt2img", backend: "comfy", prompt: "mine, next" });
      const nextPrompt = await promptIdOf(`${next.id}-1`);
      await until(async () => (await sim.stats()).byPrompt[nextPrompt] === 1, "the next job queued", 60_000);
      expect(await historyStatus(ahead)).toBeUndefined();
      await until(async () => (await historyStatus(ahead)) === "success", "the neighbour's prompt done", 60_000);
      expect(await historyStatus(waitingPrompt)).toBeUndefined();
      expect((await waitForJob(client, next.id, 60_000)).status).toBe("succeeded");
      expect((await waitForJob(client, waiting.id)).status).toBe("canceled");
      expect((await waitForJob(client, running.id)).status).toBe("canceled");
    } finally {
      await sim.config({ comfyui: { msPerImage: 20 } });
    }
  });

  it("follows a prompt whose /prompt answer was lost by its prompt_id, never queuing it twice", async () => {
    await sim.config({ comfyui: { msPerImage: 500, dropAfterAccept: 1 } });
    try {
      const job = await submit({ type: "txt2img", backend: "comfy", prompt: "answer lost" });
      const done = await waitForJob(client, job.id, 60_000);
      expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
      const promptId = await promptIdOf(`${job.id}-1`);
      const stats = await sim.stats();
      expect(stats.droppedAfterAccept).toBe(1);
      expect(stats.byPrompt[promptId]).toBe(1);
      expect((await eventsOf(job.id)).find((e) => e.type === "attempt.reattached")?.data).toMatchObject({ attempt: 1, external_id: promptId });
    } finally {
      await sim.config({ comfyui: { msPerImage: 20, dropAfterAccept: 0 } });
    }
  });

  it("re-attaches to its prompt after a gateway restart (history, then the socket), never queuing it twice", async () => {
    await sim.config({ comfyui: { msPerImage: 15_000 } });
    try {
      const job = await submit({ type: "txt2img", backend: "comfy", prompt: "across a restart", steps: 30 });
      await waitForStatus(client, job.id, "running");
      const promptId = await promptIdOf(`${job.id}-1`);
      await until(async () => (await sim.stats()).byPrompt[promptId] === 1, "queued");
      await gw.kill();
      await gw.start();
      // Followed on the socket again: its progress moves on after the restart.
      let after = 0;
      await until(async () => {
        const view = (await (await client.get(`/v1/jobs/${job.id}`)).json()) as JobView;
        if (view.progress && view.progress.step > after) after = after === 0 ? view.progress.step : Infinity;
        return after === Infinity || view.status !== "running";
      }, "moving on after the restart", 40_000);
      expect(after).toBe(Infinity);
      const done = await waitForJob(client, job.id, 90_000);
      expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
      expect((await sim.stats()).byPrompt[promptId]).toBe(1);
      expect(done.output).toHaveLength(1);
      const reattached = (await eventsOf(job.id)).find((e) => e.type === "attempt.reattached");
      expect(reattached?.data).toMatchObject({ attempt: 1, backend: "comfy", external_id: promptId });
    } finally {
      await sim.config({ comfyui: { msPerImage: 20 } });
    }
  });
});

describe("a ComfyUI older than /prompt's prompt_id field (before v0.3.45: it names each prompt itself)", () => {
  const prompts = async () => Object.values((await sim.stats()).byPrompt).reduce((a, b) => a + b, 0);

  it("follows the prompt under the id ComfyUI answered", async () => {
    await sim.config({ comfyui: { comfyOwnPromptIds: true } });
    try {
      const before = await prompts();
      const done = await waitForJob(client, (await submit({ type: "txt2img", backend: "comfy", prompt: "old server" })).id, 60_000);
      expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
      expect(done.output).toHaveLength(1);
      expect((await prompts()) - before).toBe(1);
    } finally {
      await sim.config({ comfyui: { comfyOwnPromptIds: false } });
    }
  });

  it("finds its prompt by the attempt's client id after a gateway restart, never queuing it twice, and cancels it there", async () => {
    await sim.config({ comfyui: { comfyOwnPromptIds: true, msPerImage: 15_000 } });
    try {
      const before = await prompts();
      const job = await submit({ type: "txt2img", backend: "comfy", prompt: "old server across a restart", steps: 30 });
      await waitForStatus(client, job.id, "running");
      await until(async () => (await prompts()) - before === 1, "queued");
      await gw.kill();
      await gw.start();
      const reattached = async () => (await eventsOf(job.id)).find((e) => e.type === "attempt.reattached");
      await until(async () => (await reattached()) !== undefined, "re-attached", 40_000);
      const ownId = String((await reattached())?.data.external_id);
      expect(ownId).not.toBe(await promptIdOf(`${job.id}-1`));
      expect((await sim.stats()).byPrompt[ownId]).toBe(1);
      expect((await client.post(`/v1/jobs/${job.id}/cancel`)).status).toBe(200);
      await until(async () => (await historyStatus(ownId)) === "error", "interrupted there");
      expect((await prompts()) - before).toBe(1);
    } finally {
      await sim.config({ comfyui: { comfyOwnPromptIds: false, msPerImage: 20 } });
    }
  });
});

describe("a ComfyUI server's failures", () => {
  /** An img2img job fits both ComfyUI kinds (and not the dead A1111): which backends it tried. */
  const triedBy = async (id: string) => (await eventsOf(id)).filter((e) => e.type === "attempt.started").map((e) => e.data.backend);

  it("fails over a canonical job whose node raised (its graph is Easel's: the backend's fault), counting it against that backend", async () => {
    const recent = async () => ((await (await client.get("/v1/backends")).json()) as { data: { name: string; recent: { jobs: number; success_rate: number } }[] }).data.find((b) => b.name === "comfy")?.recent;
    const before = await recent();
    await sim.config({ comfyui: { errorRate: 1 } });
    try {
      const job = await submit({ type: "img2img", init_image: png(64, 64) });
      const done = await waitForJob(client, job.id, 60_000);
      const tried = await triedBy(job.id);
      expect(tried[0]).toBe("comfy");
      expect(tried.length).toBeGreaterThan(1);
      const failures = (await eventsOf(job.id)).filter((e) => e.type === "attempt.failed");
      expect(failures[0]?.data).toMatchObject({ backend: "comfy", code: "backend_failed" });
      expect(String(failures[0]?.data.message)).toContain("simulated backend failure");
      if (done.status === "failed") expect(done.error?.code).toBe("backend_failed");
      const after = await recent();
      expect(after?.jobs).toBe((before?.jobs ?? 0) + 1);
      expect(after?.success_rate).toBeLessThan(before?.success_rate ?? 1);
    } finally {
      await sim.config({ comfyui: { errorRate: 0 } });
    }
  });

  it("fails a prompt ComfyUI refuses at once (invalid_request, its node_errors summarised), never failing over", async () => {
    await sim.config({ comfyui: { comfyRejectRate: 1 } });
    try {
      const job = await submit({ type: "img2img", init_image: png(64, 64) });
      const done = await waitForJob(client, job.id, 60_000);
      expect(done).toMatchObject({ status: "failed", error: { code: "invalid_request" } });
      expect(done.error?.message).toBe("Prompt outputs failed validation: Exception when validating node: simulated validation failure");
      expect(await triedBy(job.id)).toEqual(["comfy"]);
    } finally {
      await sim.config({ comfyui: { comfyRejectRate: 0 } });
    }
  });

  it("fails a graph ComfyUI queued with an output dropped by its checks (a 200 with node_errors), never succeeding without that output's images", async () => {
    const graph = JSON.parse(readFileSync(new URL("../../examples/comfyui-txt2img.json", import.meta.url), "utf8")) as Record<string, { class_type: string; inputs: Record<string, unknown> }>;
    Object.assign(graph["5"]?.inputs ?? {}, { width: 64, height: 64 });
    // A second output through an upscale model the server does not have: ComfyUI drops it and runs the first.
    graph["20"] = { class_type: "UpscaleModelLoader", inputs: { model_name: "missing-upscaler.pth" } };
    graph["21"] = { class_type: "ImageUpscaleWithModel", inputs: { upscale_model: ["20", 0], image: ["8", 0] } };
    graph["22"] = { class_type: "SaveImage", inputs: { filename_prefix: "up", images: ["21", 0] } };
    await sim.config({ comfyui: { msPerImage: 2_000 } });
    try {
      const res = await client.post("/v1/jobs", { type: "workflow", workflow: graph, backend: "comfy" });
      expect(res.status).toBe(202);
      const job = (await res.json()) as JobView;
      const done = await waitForJob(client, job.id, 60_000);
      expect(done).toMatchObject({ status: "failed", error: { code: "invalid_request" } });
      expect(done.error?.message).toContain("node 20 (UpscaleModelLoader)");
      expect((await eventsOf(job.id)).filter((e) => e.type === "attempt.started")).toHaveLength(1);
      // Stopped there: the part that passed did not run on for a job that failed.
      expect(await historyStatus(await promptIdOf(`${job.id}-1`))).not.toBe("success");
    } finally {
      await sim.config({ comfyui: { msPerImage: 20 } });
    }
  });

  it("follows the prompt by its history when the socket is down, and reads outputs ComfyUI served from its cache", async () => {
    await sim.config({ comfyui: { comfySocketDown: true, comfyCache: true } });
    try {
      const first = await submit({ type: "txt2img", backend: "comfy", prompt: "cached twice", seed: 21 });
      expect((await waitForJob(client, first.id, 60_000)).status).toBe("succeeded");
      const again = await waitForJob(client, (await submit({ type: "txt2img", backend: "comfy", prompt: "cached twice", seed: 21 })).id, 60_000);
      expect(again.status, JSON.stringify(again.error)).toBe("succeeded");
      expect(await sizesOf(again)).toEqual([{ width: 64, height: 64 }]);
    } finally {
      await sim.config({ comfyui: { comfySocketDown: false, comfyCache: false } });
    }
  });
});

describe("canonical jobs on a worker-comfyui RunPod endpoint", () => {
  it("runs txt2img there with the checkpoint as the endpoint lists it", async () => {
    const job = await submit({ type: "txt2img", backend: "pod-comfy", samples: 2, seed: 11, model: "v1-5-pruned-emaonly" });
    const done = await waitForJob(client, job.id, 60_000);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(done.output.map((o) => o.seed)).toEqual([11, 12]);
    expect(await sizesOf(done)).toEqual([
      { width: 64, height: 64 },
      { width: 64, height: 64 },
    ]);
  });

  it("runs img2img on a worker answering with S3 links, and reads the 4.x single-image answer", async () => {
    const img = await submit({ type: "img2img", backend: "pod-comfy-s3", init_image: png(64, 64), strength: 0.5, samples: 2, seed: 4 });
    const old = await submit({ type: "txt2img", backend: "pod-comfy-v4", seed: 30 });
    const [imgDone, oldDone] = await Promise.all([waitForJob(client, img.id, 60_000), waitForJob(client, old.id, 60_000)]);
    expect(imgDone.status, JSON.stringify(imgDone.error)).toBe("succeeded");
    expect(imgDone.output.map((o) => o.seed)).toEqual([4, 5]);
    expect(await sizesOf(imgDone)).toEqual([
      { width: 64, height: 64 },
      { width: 64, height: 64 },
    ]);
    expect(oldDone.status, JSON.stringify(oldDone.error)).toBe("succeeded");
    expect(await sizesOf(oldDone)).toEqual([{ width: 64, height: 64 }]);
  });
});

/** The simulator's A1111 beyond generation: live progress by task, skip, png-info and the lists. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readPngText } from "../../src/lib/png-text";
import { pngSize } from "./support/client";
import { startSimulatorProcess } from "./support/processes";

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 10 }) } });
});
afterAll(async () => {
  await sim?.stop();
});

const post = (path: string, body?: unknown) => fetch(sim.url + path, { method: "POST", headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
const get = async <T>(path: string): Promise<T> => (await (await fetch(sim.url + path)).json()) as T;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Progress = { progress: number; eta_relative: number; state: { job_count: number; sampling_step: number; sampling_steps: number; job: string }; current_image: string | null };
type Internal = { active: boolean; queued: boolean; completed: boolean; progress: number | null; eta: number | null; live_preview: string | null; id_live_preview: number };

describe("gpu-simulator A1111", () => {
  it("reports a running task's progress by its force_task_id, with a preview unless skipped, and zeros when idle", async () => {
    await sim.config({ msPerImage: 1500 });
    const run = post("/sdapi/v1/txt2img", { prompt: "slow", steps: 10, width: 64, height: 64, force_task_id: "task(easel-1)" });
    await sleep(700);
    const live = await get<Progress>("/sdapi/v1/progress");
    expect(live.progress).toBeGreaterThan(0);
    expect(live.state).toMatchObject({ job: "scripts_txt2img", job_count: 1, sampling_steps: 10 });
    expect(live.state.sampling_step).toBeGreaterThan(0);
    expect(pngSize(new Uint8Array(Buffer.from(live.current_image ?? "", "base64")))).toEqual({ width: 64, height: 64 });
    expect((await get<Progress>("/sdapi/v1/progress?skip_current_image=true")).current_image).toBeNull();

    const internal = (await (await post("/internal/progress", { id_task: "task(easel-1)", id_live_preview: -1 })).json()) as Internal;
    expect(internal).toMatchObject({ active: true, queued: false, completed: false });
    expect(internal.progress).toBeGreaterThan(0);
    expect(internal.live_preview).toMatch(/^data:image\/png;base64,/);
    // The same preview id again: no image resent.
    const again = (await (await post("/internal/progress", { id_task: "task(easel-1)", id_live_preview: internal.id_live_preview })).json()) as Internal;
    expect(again.id_live_preview).toBeGreaterThanOrEqual(internal.id_live_preview);
    const other = (await (await post("/internal/progress", { id_task: "task(someone-else)" })).json()) as Internal;
    expect(other).toMatchObject({ active: false, queued: false, completed: false });

    expect((await run).status).toBe(200);
    expect((await (await post("/internal/progress", { id_task: "task(easel-1)" })).json()) as Internal).toMatchObject({ active: false, completed: true });
    expect(await get<Progress>("/sdapi/v1/progress")).toMatchObject({ progress: 0, eta_relative: 0, state: { job_count: 0 }, current_image: null });
  });

  it("skips the current batch: the next one runs and every image comes back", async () => {
    await sim.config({ msPerImage: 1500 });
    const started = Date.now();
    const run = post("/sdapi/v1/txt2img", { prompt: "two batches", n_iter: 2, width: 64, height: 64 });
    await sleep(300);
    expect((await post("/sdapi/v1/skip")).status).toBe(200);
    const body = (await (await run).json()) as { images: string[] };
    expect(body.images).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(2900);
    expect((await sim.stats()).skips).toBe(1);
    await sim.config({ msPerImage: 10 });
  });

  it("interrupts only the current generation, as A1111 does: a request beside it is queued and runs to the end", async () => {
    await sim.config({ msPerImage: 1200 });
    const first = post("/sdapi/v1/txt2img", { prompt: "current", width: 64, height: 64, force_task_id: "task(first)" });
    await sleep(150);
    const second = post("/sdapi/v1/txt2img", { prompt: "beside", width: 64, height: 64, force_task_id: "task(second)" });
    await sleep(150);
    expect((await (await post("/internal/progress", { id_task: "task(first)" })).json()) as Internal).toMatchObject({ active: true, queued: false });
    expect((await (await post("/internal/progress", { id_task: "task(second)" })).json()) as Internal).toMatchObject({ active: false, queued: true });
    expect((await post("/sdapi/v1/interrupt")).status).toBe(200);
    expect(((await (await first).json()) as { images: string[] }).images).toHaveLength(0);
    expect(((await (await second).json()) as { images: string[] }).images).toHaveLength(1);
    await sim.config({ msPerImage: 10 });
  });

  it("writes A1111's infotext into each PNG's parameters chunk, and png-info reads it back", async () => {
    await sim.config({ msPerImage: 10 });
    const res = (await (await post("/sdapi/v1/txt2img", { prompt: "a cat wizard", negative_prompt: "blurry", seed: 42, steps: 12, cfg_scale: 6, width: 64, height: 64 })).json()) as { images: string[]; info: string };
    const png = Buffer.from(res.images[0] ?? "", "base64");
    const text = await readPngText(new Uint8Array(png));
    expect(text.parameters).toBe("a cat wizard\nNegative prompt: blurry\nSteps: 12, Sampler: Euler a, Schedule type: Automatic, CFG scale: 6, Seed: 42, Size: 64x64, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1");
    expect((JSON.parse(res.info) as { infotexts: string[] }).infotexts[0]).toBe(text.parameters);
    const info = (await (await post("/sdapi/v1/png-info", { image: `data:image/png;base64,${png.toString("base64")}` })).json()) as { info: string; items: object; parameters: Record<string, unknown> };
    expect(info.info).toBe(text.parameters);
    expect(info.items).toEqual({});
    expect(info.parameters).toMatchObject({ Prompt: "a cat wizard", "Negative prompt": "blurry", Steps: "12", Seed: "42", "Size-1": "64", "Size-2": "64", Model: "v1-5-pruned-emaonly" });
  });

  it("answers each list in A1111's type", async () => {
    const arrays = ["sd-models", "samplers", "schedulers", "upscalers", "latent-upscale-modes", "sd-vae", "loras", "hypernetworks", "face-restorers", "realesrgan-models", "prompt-styles", "script-info"];
    for (const name of arrays) expect(Array.isArray(await get(`/sdapi/v1/${name}`)), name).toBe(true);
    expect(await get("/sdapi/v1/embeddings")).toMatchObject({ loaded: expect.any(Object), skipped: expect.any(Object) });
    expect(await get("/sdapi/v1/scripts")).toMatchObject({ txt2img: expect.any(Array), img2img: expect.any(Array) });
    expect(await get("/sdapi/v1/memory")).toMatchObject({ ram: expect.any(Object), cuda: expect.any(Object) });
    expect(await get("/sdapi/v1/cmd-flags")).toMatchObject({ api: true });
    expect((await get<{ title: string }[]>("/sdapi/v1/sd-models"))[0]?.title).toMatch(/^[\w.-]+\.safetensors \[[0-9a-f]{10}\]$/);
    expect((await post("/sdapi/v1/refresh-checkpoints")).status).toBe(200);
    expect((await post("/sdapi/v1/refresh-loras")).status).toBe(200);
  });
});

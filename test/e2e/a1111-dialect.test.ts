/**
 * The A1111 API as the `webuiapi` Python client (mix1009/sdwebuiapi) calls it — its full default
 * txt2img body, basic auth with the API key as the password — against a real gateway and two
 * simulated A1111 backends (basic auth, models configured by bare names, one generation at a time).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { readPngText } from "../../src/lib/png-text";
import { api, pngSize, waitForJob, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";

const KEY = "sk_alice";
const OTHER_KEY = "sk_bob";
const SIM_AUTH = { SIM_A1111_USERNAME: "webui", SIM_A1111_PASSWORD: "pw-of-the-gpu-box" };

let simA: Awaited<ReturnType<typeof startSimulatorProcess>>;
let simB: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;

beforeAll(async () => {
  [simA, simB] = await Promise.all([startSimulatorProcess({ env: { ...SIM_AUTH, SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } }), startSimulatorProcess({ env: { ...SIM_AUTH, SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } })]);
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-a1111-"));
  const backend = (name: string, url: string) => ({ name, kind: "a1111", url, username: SIM_AUTH.SIM_A1111_USERNAME, password: SIM_AUTH.SIM_A1111_PASSWORD, models: ["v1-5-pruned-emaonly", "chilloutmix-Ni"], max_concurrency: 1 });
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ alice: { api_keys: [KEY], webhook_secrets: [] }, bob: { api_keys: [OTHER_KEY], webhook_secrets: [] } }),
      BACKENDS: JSON.stringify([backend("a", simA.url), backend("b", simB.url)]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all([simA?.stop(), simB?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What `requests` sends for `session.auth = (username, password)`. */
const auth = (key: string) => ({ authorization: `Basic ${Buffer.from(`webuiapi-user:${key}`).toString("base64")}` });
const sdapi = {
  get: async <T>(path: string, key = KEY): Promise<T> => {
    const res = await fetch(`${gw.url}/sdapi/v1/${path}`, { headers: auth(key) });
    expect(res.status, path).toBe(200);
    return (await res.json()) as T;
  },
  post: (path: string, body?: unknown, key = KEY) => fetch(`${gw.url}/sdapi/v1/${path}`, { method: "POST", headers: { ...auth(key), ...(body === undefined ? {} : { "content-type": "application/json" }) }, body: body === undefined ? undefined : JSON.stringify(body) }),
};

/** `WebUIApi.txt2img()`'s payload with every default, as the client builds it. */
const webuiapiTxt2img = (over: Record<string, unknown> = {}) => ({
  enable_hr: false,
  hr_scale: 2,
  hr_upscaler: "Latent",
  hr_second_pass_steps: 0,
  hr_resize_x: 0,
  hr_resize_y: 0,
  hr_checkpoint_name: null,
  hr_sampler_name: null,
  hr_scheduler: null,
  hr_prompt: "",
  hr_negative_prompt: "",
  denoising_strength: 0.7,
  firstphase_width: 0,
  firstphase_height: 0,
  prompt: "",
  styles: [],
  seed: -1,
  subseed: -1,
  subseed_strength: 0.0,
  seed_resize_from_h: 0,
  seed_resize_from_w: 0,
  batch_size: 1,
  n_iter: 1,
  steps: 20,
  cfg_scale: 7.0,
  width: 512,
  height: 512,
  restore_faces: false,
  tiling: false,
  do_not_save_samples: false,
  do_not_save_grid: false,
  negative_prompt: "",
  eta: 1.0,
  s_churn: 0,
  s_tmax: 0,
  s_tmin: 0,
  s_noise: 1,
  override_settings: {},
  override_settings_restore_afterwards: true,
  sampler_name: "Euler a",
  scheduler: "automatic",
  sampler_index: "Euler a",
  script_name: null,
  script_args: [],
  send_images: true,
  save_images: false,
  alwayson_scripts: {},
  ...over,
});

type Progress = { progress: number; eta_relative: number; state: Record<string, number | string | boolean>; current_image: string | null; textinfo: string | null };
type Txt2ImgAnswer = { images: string[]; parameters: Record<string, unknown>; info: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(100);
  }
  throw new Error("timed out");
}

/**
 * The tenant's job now generating (one not in `seen`), found by the task id Easel sent the backend
 * (it names the run), then read through /v1 with the tenant's key.
 */
const runningJob = (key: string, seen: string[] = []) =>
  until(async () => {
    const tasks = [...(await simA.tasks()), ...(await simB.tasks())];
    for (const runId of tasks.map((t) => /run_[a-z2-7]{39}/.exec(t)?.[0]).filter((id): id is string => !!id && !seen.includes(id))) {
      const res = await api(gw.url, key).get(`/v1/jobs/${runId}`);
      if (res.status === 200) return (await res.json()) as JobView;
    }
    return undefined;
  });

describe("A1111 dialect as webuiapi calls it", () => {
  it("runs the client's full default txt2img body, and png-info of the output gives back its infotext", async () => {
    const res = await sdapi.post("txt2img", webuiapiTxt2img({ prompt: "a cat wizard", negative_prompt: "blurry", width: 64, height: 64 }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as Txt2ImgAnswer;
    expect(body.images).toHaveLength(1);
    const png = Buffer.from(body.images[0] ?? "", "base64");
    expect(pngSize(new Uint8Array(png))).toEqual({ width: 64, height: 64 });
    // Easel keeps the backend's PNG bytes: A1111's parameters chunk is still there.
    const chunk = (await readPngText(new Uint8Array(png))).parameters ?? "";
    expect(chunk).toMatch(/^a cat wizard\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, .*Size: 64x64/);
    // info says what the image says, and names the model the backend ran.
    const info = JSON.parse(body.info) as { infotexts: string[]; sd_model_name: string | null; sd_model_hash: string | null };
    expect(info.infotexts).toEqual([chunk]);
    const [, hash, name] = /Model hash: (\w+), Model: ([^,]+)/.exec(chunk) ?? [];
    expect(name).toMatch(/^(v1-5-pruned-emaonly|chilloutmix-Ni)$/);
    expect({ name: info.sd_model_name, hash: info.sd_model_hash }).toEqual({ name, hash });

    const read = (await (await sdapi.post("png-info", { image: `data:image/png;base64,${png.toString("base64")}` })).json()) as { info: string; items: Record<string, string>; parameters: Record<string, unknown> };
    expect(read.info).toBe(chunk);
    expect(read.items).toEqual({});
    expect(read.parameters).toMatchObject({ Prompt: "a cat wizard", "Negative prompt": "blurry", Steps: "20", Sampler: "Euler a", "Size-1": "64", "Size-2": "64" });

    const bad = await sdapi.post("png-info", { image: "%%% not base64" });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ detail: [{ loc: ["body", "image"] }] });
  });

  it("generates from an empty prompt, webuiapi's default, as A1111 does", async () => {
    const res = await sdapi.post("txt2img", webuiapiTxt2img({ width: 64, height: 64 }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as Txt2ImgAnswer;
    expect(body.images).toHaveLength(1);
    expect(JSON.parse(body.info)).toMatchObject({ prompt: "" });
  });

  it("reads numbers and booleans sent as strings as A1111's pydantic v1 does; what it cannot read is a 422 naming the field", async () => {
    const res = await sdapi.post("txt2img", webuiapiTxt2img({ prompt: "strings", steps: "20", cfg_scale: "7.5", seed: "-1", width: "64", height: "64", batch_size: "1", send_images: "true" }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as Txt2ImgAnswer;
    expect(pngSize(new Uint8Array(Buffer.from(body.images[0] ?? "", "base64")))).toEqual({ width: 64, height: 64 });
    // A1111 echoes the request as its model read it.
    expect(body.parameters).toMatchObject({ steps: 20, cfg_scale: 7.5, seed: -1, width: 64, height: 64, send_images: true });
    expect(JSON.parse(body.info)).toMatchObject({ steps: 20, cfg_scale: 7.5, width: 64, height: 64 });
    const bad = await sdapi.post("txt2img", webuiapiTxt2img({ steps: "twenty" }));
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ detail: [{ loc: ["body", "steps"], msg: "value is not a valid integer" }] });
  });

  it("answers send_images: false as A1111 does, 200 without images, while the job keeps them", async () => {
    const res = await sdapi.post("txt2img", webuiapiTxt2img({ prompt: "kept, not sent", width: 64, height: 64, send_images: false }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as Txt2ImgAnswer;
    expect(body.images).toEqual([]);
    expect(JSON.parse(body.info)).toMatchObject({ prompt: "kept, not sent", width: 64, height: 64 });
    const runId = res.headers.get("x-easel-run-id") ?? "";
    const job = (await (await api(gw.url, KEY).get(`/v1/jobs/${runId}`)).json()) as JobView;
    expect(job.status).toBe("succeeded");
    expect(job.output).toHaveLength(1);
  });

  it("lists models under the backends' own titles, and options always report one of them", async () => {
    const titles = (await sdapi.get<{ title: string }[]>("sd-models")).map((m) => m.title).sort();
    expect(titles).toEqual(["chilloutmix-Ni.safetensors [7234b76e42]", "v1-5-pruned-emaonly.safetensors [6ce0161689]"]);
    expect(titles).toContain((await sdapi.get<{ sd_model_checkpoint: string }>("options")).sd_model_checkpoint);
    // util_set_model sends the title; a bare name is kept under its title too.
    expect((await sdapi.post("options", { sd_model_checkpoint: "chilloutmix-Ni.safetensors [7234b76e42]" })).status).toBe(200);
    expect((await sdapi.get<{ sd_model_checkpoint: string }>("options")).sd_model_checkpoint).toBe("chilloutmix-Ni.safetensors [7234b76e42]");
    expect((await sdapi.post("options", { sd_model_checkpoint: "v1-5-pruned-emaonly" })).status).toBe(200);
    expect((await sdapi.get<{ sd_model_checkpoint: string }>("options")).sd_model_checkpoint).toBe("v1-5-pruned-emaonly.safetensors [6ce0161689]");
  });

  it("answers each list in A1111's type, merged across the backends, without the backends' secrets", async () => {
    for (const name of ["samplers", "schedulers", "upscalers", "latent-upscale-modes", "sd-vae", "loras", "hypernetworks", "face-restorers", "realesrgan-models", "prompt-styles", "script-info"]) {
      const list = await sdapi.get<unknown[]>(name);
      expect(Array.isArray(list), name).toBe(true);
    }
    expect((await sdapi.get<{ name: string }[]>("samplers")).map((s) => s.name)).toContain("Euler a");
    expect((await sdapi.get<{ name: string }[]>("loras")).map((s) => s.name)).toEqual(["add_detail"]);
    expect(await sdapi.get("embeddings")).toMatchObject({ loaded: { EasyNegative: expect.any(Object) }, skipped: {} });
    expect(await sdapi.get("scripts")).toMatchObject({ txt2img: expect.arrayContaining(["x/y/z plot"]), img2img: expect.any(Array) });
    expect(await sdapi.get("memory")).toMatchObject({ ram: expect.any(Object), cuda: expect.any(Object) });
    const flags = await sdapi.get<Record<string, unknown>>("cmd-flags");
    expect(flags.api).toBe(true);
    expect(Object.values(flags).every((v) => typeof v === "boolean")).toBe(true);
    for (const what of ["refresh-checkpoints", "refresh-loras"]) {
      const res = await sdapi.post(what);
      expect(res.status).toBe(200);
      expect(await res.json()).toBeNull();
    }
    expect((await simA.stats()).requests["/sdapi/v1/refresh-checkpoints"]).toBeGreaterThanOrEqual(1);
    // The SD-on-EKS queue agent unloads before switching models: accepted, the shared backend left alone.
    const unload = await sdapi.post("unload-checkpoint");
    expect(unload.status).toBe(200);
    expect(await unload.json()).toEqual({});
    expect((await simA.stats()).requests["/sdapi/v1/unload-checkpoint"]).toBeUndefined();
  });

  it("reports live progress while a long job runs, in /sdapi/v1/progress, the /v1 job and its SSE stream, then idle", async () => {
    await Promise.all([simA.config({ msPerImage: 6000 }), simB.config({ msPerImage: 6000 })]);
    try {
      const idle = await sdapi.get<Progress>("progress");
      expect(idle).toMatchObject({ progress: 0, eta_relative: 0, state: { job_count: 0, sampling_step: 0 }, current_image: null });

      const call = sdapi.post("txt2img", webuiapiTxt2img({ prompt: "slow", width: 64, height: 64 }));
      const job = await runningJob(KEY);
      const sse = fetch(`${gw.url}/v1/jobs/${job.id}/events`, { headers: { authorization: `Bearer ${KEY}`, accept: "text/event-stream" }, signal: AbortSignal.timeout(20_000) }).then((r) => r.text());

      const live = await until(async () => {
        const p = await sdapi.get<Progress>("progress");
        return p.progress > 0.05 && Number(p.state.sampling_step) > 0 ? p : undefined;
      });
      expect(Number(live.state.job_count)).toBeGreaterThanOrEqual(1);
      expect(live.state).toMatchObject({ sampling_steps: 20, job: "scripts_txt2img" });
      expect(live.eta_relative).toBeGreaterThan(0);
      expect(pngSize(new Uint8Array(Buffer.from(live.current_image ?? "", "base64")))).toEqual({ width: 64, height: 64 });
      expect((await sdapi.get<Progress>("progress?skip_current_image=true")).current_image).toBeNull();
      // Another tenant sees nothing of it.
      expect(await sdapi.get<Progress>("progress", OTHER_KEY)).toMatchObject({ progress: 0, state: { job_count: 0 } });

      const v1Job = await until(async () => {
        const j = (await (await api(gw.url, KEY).get(`/v1/jobs/${job.id}`)).json()) as JobView;
        return j.progress && j.progress.fraction > 0 ? j : undefined;
      });
      expect(v1Job.progress).toMatchObject({ steps: 20, step: expect.any(Number), eta_s: expect.any(Number) });

      expect((await call).status).toBe(200);
      const done = (await (await api(gw.url, KEY).get(`/v1/jobs/${job.id}`)).json()) as JobView;
      expect(done.status).toBe("succeeded");
      expect(done.progress).toBeNull();
      expect(await sdapi.get<Progress>("progress")).toMatchObject({ progress: 0, state: { job_count: 0 } });

      const stream = await sse;
      const progressEvents = stream.split("\n\n").filter((e) => e.includes("event: job.progress"));
      expect(progressEvents.length).toBeGreaterThanOrEqual(2);
      const dataOf = (e: string) => e.split("\n").find((l) => l.startsWith("data: "))?.slice(6) ?? "{}";
      const fractions = progressEvents.map((e) => (JSON.parse(dataOf(e)) as { data: { fraction: number } }).data.fraction);
      expect(fractions.at(-1)).toBeGreaterThan(fractions[0] ?? 1);
      expect(stream).toContain("event: job.succeeded");
    } finally {
      await Promise.all([simA.config({ msPerImage: 20 }), simB.config({ msPerImage: 20 })]);
    }
  });

  it("interrupt answers the waiting txt2img at once, cancels the job and stops its backend, and leaves another tenant's job alone", async () => {
    await Promise.all([simA.config({ msPerImage: 8000 }), simB.config({ msPerImage: 8000 })]);
    await Promise.all([simA.reset(), simB.reset()]);
    try {
      const mine = sdapi.post("txt2img", webuiapiTxt2img({ prompt: "mine", width: 64, height: 64 }));
      const myJob = await runningJob(KEY);
      const theirs = sdapi.post("txt2img", webuiapiTxt2img({ prompt: "theirs", width: 64, height: 64 }), OTHER_KEY);
      const theirJob = await runningJob(OTHER_KEY, [myJob.id]);
      expect(myJob.backend).not.toBe(theirJob.backend);
      await sleep(500);

      const pressed = Date.now();
      const stop = await sdapi.post("interrupt");
      expect(stop.status).toBe(200);
      expect(await stop.json()).toEqual({});
      const answer = await mine;
      expect(Date.now() - pressed).toBeLessThan(3000);
      expect(answer.status).toBe(200);
      expect(((await answer.json()) as Txt2ImgAnswer).images).toEqual([]);

      const canceled = await waitForJob(api(gw.url, KEY), myJob.id, 5000);
      expect(canceled.status).toBe("canceled");
      const events = ((await (await api(gw.url, KEY).get(`/v1/jobs/${myJob.id}/events`)).json()) as { data: { type: string }[] }).data.map((e) => e.type);
      expect(events.at(-1)).toBe("job.canceled");
      const mySim = myJob.backend === "a" ? simA : simB;
      const theirSim = myJob.backend === "a" ? simB : simA;
      await until(async () => ((await mySim.stats()).interrupts >= 1 ? true : undefined), 5000);
      expect((await theirSim.stats()).interrupts).toBe(0);

      const other = await theirs;
      expect(other.status).toBe(200);
      expect(((await other.json()) as Txt2ImgAnswer).images).toHaveLength(1);
      expect((await waitForJob(api(gw.url, OTHER_KEY), theirJob.id)).status).toBe("succeeded");
    } finally {
      await Promise.all([simA.config({ msPerImage: 20 }), simB.config({ msPerImage: 20 })]);
    }
  });

  it("passes skip to the backend running the tenant's job", async () => {
    await Promise.all([simA.config({ msPerImage: 3000 }), simB.config({ msPerImage: 3000 })]);
    await Promise.all([simA.reset(), simB.reset()]);
    try {
      const started = Date.now();
      const call = sdapi.post("txt2img", webuiapiTxt2img({ prompt: "two batches", n_iter: 2, width: 64, height: 64 }));
      await runningJob(KEY);
      await sleep(500);
      expect((await sdapi.post("skip")).status).toBe(200);
      const res = await call;
      expect(((await res.json()) as Txt2ImgAnswer).images).toHaveLength(2);
      expect(Date.now() - started).toBeLessThan(5500);
      expect((await simA.stats()).skips + (await simB.stats()).skips).toBe(1);
    } finally {
      await Promise.all([simA.config({ msPerImage: 20 }), simB.config({ msPerImage: 20 })]);
    }
  });

  it("upscales as webuiapi's extra_single_image and extra_batch_images send it: 2x of a 64x64 PNG is 128x128", async () => {
    const extras = { resize_mode: 0, show_extras_results: true, gfpgan_visibility: 0, codeformer_visibility: 0, codeformer_weight: 0, upscaling_resize: 2, upscaling_resize_w: 512, upscaling_resize_h: 512, upscaling_crop: true, upscaler_1: "None", upscaler_2: "None", extras_upscaler_2_visibility: 0, upscale_first: false };
    const png = (r: number) => `data:image/png;base64,${Buffer.from(encodePng(64, 64, (x, y) => [r, x * 4, y * 4])).toString("base64")}`;
    const single = await sdapi.post("extra-single-image", { ...extras, image: png(10) });
    expect(single.status).toBe(200);
    const one = (await single.json()) as { html_info: string; image: string };
    expect(pngSize(new Uint8Array(Buffer.from(one.image, "base64")))).toEqual({ width: 128, height: 128 });
    expect(one.html_info).toContain("128x128");
    expect(single.headers.get("x-easel-run-id")).toMatch(/^run_/);

    const batch = await sdapi.post("extra-batch-images", { ...extras, upscaling_resize: 1.5, imageList: [{ data: png(20), name: "image00001" }, { data: png(30), name: "image00002" }] });
    expect(batch.status).toBe(200);
    const many = (await batch.json()) as { html_info: string; images: string[] };
    expect(many.images.map((i) => pngSize(new Uint8Array(Buffer.from(i, "base64"))))).toEqual([
      { width: 96, height: 96 },
      { width: 96, height: 96 },
    ]);

    const bad = await sdapi.post("extra-batch-images", { ...extras, imageList: [{ data: png(40) }, { data: "not an image" }] });
    expect(bad.status).toBe(422);
    expect(JSON.stringify(await bad.json())).toContain('"imageList","1","data"');
  });

  it("png-info of a PNG without infotext answers empty info and the text chunks it has", async () => {
    const png = Buffer.from(encodePng(8, 8, () => [1, 2, 3], { Software: "a paint program" }));
    const info = (await (await sdapi.post("png-info", { image: png.toString("base64") })).json()) as { info: string; items: Record<string, string>; parameters: Record<string, unknown> };
    expect(info).toMatchObject({ info: "", items: { Software: "a paint program" }, parameters: { Prompt: "", "Negative prompt": "" } });
  });
});

/**
 * Each seed API's own example request (test/fixtures/seeds/), sent as its document shows with only
 * the host (and image URLs, served here on loopback) changed, against a real gateway.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AwsClient } from "aws4fetch";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { api, pngSize, waitForJob, type JobView } from "./support/client";
import { freePort, startGateway, startSimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";

const KEY = "sk_seed_user";
const OTHER_KEY = "sk_other_user";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(resolve(import.meta.dirname, "../fixtures/seeds", name), "utf8")) as Record<string, unknown>;

const PNG = Buffer.from(encodePng(32, 32, (x, y) => [x * 8, y * 8, 128]));
const B64 = PNG.toString("base64");
/** A landscape init image, for the APIs that size an img2img by its image. */
const WIDE_B64 = Buffer.from(encodePng(768, 512, (x, y) => [x % 256, y % 256, 64])).toString("base64");

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let images: Server;
let imageBase: string;
let s3: S3rver;
let s3Dir: string;
let dir: string;

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } });
  receiver = await startReceiver({ secrets: [SECRET] });
  const missedOnce = new Set<string>();
  images = createServer((req, res) => {
    // A link that fails the first time it is fetched, as a not-yet-uploaded image does.
    if (req.url?.startsWith("/once-missing/") && !missedOnce.has(req.url)) {
      missedOnce.add(req.url);
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "image/png" });
    res.end(PNG);
  });
  await new Promise<void>((r) => images.listen(0, "127.0.0.1", r));
  imageBase = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;

  const s3Port = await freePort();
  s3Dir = mkdtempSync(join(tmpdir(), "easel-s3-"));
  s3 = new S3rver({ port: s3Port, address: "127.0.0.1", silent: true, directory: s3Dir, configureBuckets: [{ name: "inputs", configs: [] }] });
  await s3.run();
  const aws = new AwsClient({ accessKeyId: "S3RVER", secretAccessKey: "S3RVER", region: "us-east-1", service: "s3" });
  const put = await aws.fetch(`http://127.0.0.1:${s3Port}/inputs/cats/cat.png`, { method: "PUT", body: PNG });
  expect(put.ok).toBe(true);

  dir = mkdtempSync(join(tmpdir(), "easel-e2e-dialects-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({
        seeds: { api_keys: [KEY], webhook_secrets: [SECRET], default_webhook: `${receiver.url}/sns`, s3_read_prefixes: ["inputs/"] },
        other: { api_keys: [OTHER_KEY], webhook_secrets: [SECRET] },
      }),
      BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url }]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
      S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
      S3_REGION: "us-east-1",
      S3_ACCESS_KEY_ID: "S3RVER",
      S3_SECRET_ACCESS_KEY: "S3RVER",
    },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await receiver?.close();
  images?.close();
  await s3?.close();
  for (const d of [dir, s3Dir]) if (d) rmSync(d, { recursive: true, force: true });
});

const post = (path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal) =>
  fetch(gw.url + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body), signal });
const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}` });
const v1 = () => api(gw.url, KEY);
const sizeOf = (b64: string) => pngSize(new Uint8Array(Buffer.from(b64, "base64")));
const jobOf = async (id: string) => (await (await v1().get(`/v1/jobs/${id}`)).json()) as JobView;
const deliveriesOf = async (id: string) => ((await (await v1().get(`/v1/jobs/${id}/deliveries`)).json()) as { data: { status_code: number | null }[] }).data;

async function poll<T>(fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("timed out");
}

describe("AUTOMATIC1111 (seeds 003, 001)", () => {
  it("answers seed 003's txt2img payload synchronously with images, parameters and info", async () => {
    const payload = fixture("a1111-txt2img.json");
    const res = await post("/sdapi/v1/txt2img", payload, basic("admin", KEY));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { images: string[]; parameters: unknown; info: string };
    expect(Object.keys(body).sort()).toEqual(["images", "info", "parameters"]);
    expect(body.images).toHaveLength(1);
    expect(sizeOf(body.images[0] ?? "")).toEqual({ width: 512, height: 512 });
    expect(body.parameters).toEqual(payload);
    const info = JSON.parse(body.info) as { seed: number; all_seeds: number[]; infotexts: string[] };
    expect(info.seed).toBe(985454925);
    expect(info.all_seeds).toEqual([985454925]);
    const runId = res.headers.get("x-easel-run-id") ?? "";
    expect(((await (await v1().get(`/v1/jobs/${runId}`)).json()) as JobView).status).toBe("succeeded");
  });

  it("lists models in A1111's form and switches the tenant's model through /options", async () => {
    const models = (await (await fetch(`${gw.url}/sdapi/v1/sd-models`, { headers: basic("admin", KEY) })).json()) as Record<string, unknown>[];
    expect(models.length).toBeGreaterThan(0);
    expect(Object.keys(models[0] ?? {}).sort()).toEqual(["config", "filename", "hash", "model_name", "sha256", "title"]);
    expect((await post("/sdapi/v1/options", fixture("a1111-options.json"), basic("admin", KEY))).status).toBe(200);
    const options = (await (await fetch(`${gw.url}/sdapi/v1/options`, { headers: basic("admin", KEY) })).json()) as Record<string, unknown>;
    expect(options.sd_model_checkpoint).toBe("v1-5-pruned-emaonly.safetensors [6ce0161689]");
  });

  it("answers errors in A1111's own shapes: 401 A1111's HTTPException envelope, 422 FastAPI detail list", async () => {
    const unauth = await post("/sdapi/v1/txt2img", fixture("a1111-txt2img.json"), basic("admin", "wrong"));
    expect(unauth.status).toBe(401);
    expect(await unauth.json()).toEqual({ error: "HTTPException", detail: "Incorrect username or password", body: "", errors: "401: Incorrect username or password" });
    const unknown = await post("/sdapi/v1/txt2img", { ...fixture("a1111-txt2img.json"), override_settings: { sd_model_checkpoint: "nope.safetensors" } }, basic("admin", KEY));
    expect(unknown.status).toBe(422);
    const err = (await unknown.json()) as { detail: { loc: string[]; msg: string }[] };
    expect(err.detail[0]?.loc).toEqual(["body", "override_settings", "sd_model_checkpoint"]);
    const tooWide = await post("/sdapi/v1/txt2img", { ...fixture("a1111-txt2img.json"), width: 4096 }, basic("admin", KEY));
    expect(tooWide.status).toBe(422);
    expect(((await tooWide.json()) as { detail: { loc: string[] }[] }).detail[0]?.loc).toEqual(["body", "width"]);
  });

  it("echoes an img2img request without its init images, as A1111 does, and reports the denoising strength", async () => {
    const payload = { prompt: "a cat wizard", init_images: [B64], denoising_strength: 0.4, width: 64, height: 64, seed: -1 };
    const res = await post("/sdapi/v1/img2img", payload, basic("anyone", KEY));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { images: string[]; parameters: Record<string, unknown>; info: string };
    expect(body.parameters).toEqual({ ...payload, init_images: null, mask: null });
    const info = JSON.parse(body.info) as { seed: number; denoising_strength: number; infotexts: string[] };
    expect(info.seed).toBeGreaterThanOrEqual(0);
    expect(info.denoising_strength).toBe(0.4);
    expect(info.infotexts[0]).toContain(`Seed: ${info.seed}`);
    expect(sizeOf(body.images[0] ?? "")).toEqual({ width: 64, height: 64 });
  });
});

describe("ModelsLab v3 (seed 002)", () => {
  it("takes the seed's img2img body as it is, answers (success, or processing for a job still running), then fetch answers success with output and meta", async () => {
    const body = { ...fixture("modelslab-img2img.json"), key: KEY, init_image: `${imageBase}/overture.png` };
    const res = await post("/api/v3/img2img", body, {});
    expect(res.status).toBe(200);
    const first = (await res.json()) as { status: string; id: string; eta?: number; fetch_result?: string; track_id: null };
    expect(["processing", "success"]).toContain(first.status);
    expect(typeof first.id).toBe("string");
    // The success body is fetch's; processing carries track_id.
    if (first.status === "processing") expect(first).toMatchObject({ track_id: null, fetch_result: `${gw.url}/api/v3/fetch/${first.id}` });
    const done = await poll(async () => {
      const r = (await (await post(`/api/v3/fetch/${first.id}`, { key: KEY }, {})).json()) as { status: string; output: string[]; meta: Record<string, unknown>; generationTime: number };
      return r.status === "success" ? r : undefined;
    });
    expect(Object.keys(done).sort()).toEqual(["generationTime", "id", "meta", "output", "proxy_links", "status"]);
    expect(Object.keys(done.meta)).toEqual(expect.arrayContaining(["H", "W", "enable_attention_slicing", "file_prefix", "guidance_scale", "model", "n_samples", "negative_prompt", "outdir", "prompt", "revision", "safety_checker", "seed", "steps", "vae"]));
    expect(done.output).toHaveLength(1);
    expect(pngSize(new Uint8Array(await (await fetch(done.output[0] ?? "")).arrayBuffer()))).toEqual({ width: 512, height: 512 });
    expect(done.meta).toMatchObject({ W: 512, H: 512, steps: 30, guidance_scale: 7.5, prompt: "a cat sitting on a bench" });
    expect(typeof done.generationTime).toBe("number");
  });

  it("posts the success body with track_id to the webhook, and base64 output when asked", async () => {
    const body = { ...fixture("modelslab-img2img.json"), key: KEY, init_image: `${imageBase}/overture.png`, width: "64", height: "64", base64: "yes", webhook: `${receiver.url}/modelslab`, track_id: "order-7" };
    const id = ((await (await post("/api/v3/img2img", body, {})).json()) as { id: string }).id;
    const hit = await receiver.waitFor((d) => d.path === "/modelslab" && (d.json as { id?: string }).id === id, 30_000);
    expect(hit.verified).toEqual([true]);
    const sent = hit.json as { status: string; track_id: string; output: string[] };
    expect(sent).toMatchObject({ status: "success", track_id: "order-7" });
    expect(sizeOf(sent.output[0] ?? "")).toEqual({ width: 64, height: 64 });
    // The same job through the canonical API, with its delivery recorded.
    expect((await jobOf(id)).track_id).toBe("order-7");
    expect((await deliveriesOf(id)).map((d) => d.status_code)).toContain(200);
  });

  it("answers errors as {status: error, message} with a 4xx", async () => {
    const bad = await post("/api/v3/text2img", { key: "wrong", prompt: "x" }, {});
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ status: "error", message: expect.any(String) });
    const nullKey = await post("/api/v3/text2img", { key: null, prompt: "x" }, {});
    expect(nullKey.status).toBe(401);
    expect(await nullKey.json()).toMatchObject({ status: "error" });
    const invalid = await post("/api/v3/text2img", { key: KEY, prompt: "x", samples: "9" }, {});
    expect(invalid.status).toBe(422);
    expect(await invalid.json()).toMatchObject({ status: "error", message: expect.stringContaining("samples") });
    const malformed = await fetch(`${gw.url}/api/v3/text2img`, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ status: "error" });
    const missing = await post("/api/v3/fetch/run_aaaaaaaaaaaaaaaaaaaaaaaaaa", { key: KEY }, {});
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ status: "error" });
  });
});

describe("ModelsLab: the generate call's own answer, fetch by request_id, img2img's size", () => {
  type Reply = { status: string; id: string; output: string[]; proxy_links?: string[]; meta: Record<string, number | string>; fetch_result?: string; message?: string; messege?: string; tip?: string };
  const generate = async (path: string, body: Record<string, unknown>) => {
    const res = await post(path, { key: KEY, ...body }, {});
    expect(res.status).toBe(200);
    return (await res.json()) as Reply;
  };

  it("a realtime call answers a job that ends within a few seconds with success and its output, as ModelsLab holds its answer; v3, v6 images and instant_response answer processing at once", async () => {
    for (const path of ["/api/v6/realtime/text2img", "/api/v6/realtime/img2img"]) {
      const done = await generate(path, { prompt: "a lighthouse", width: "64", height: "64", init_image: `${imageBase}/cat.png` });
      expect(done.status, path).toBe("success");
      expect(done.output, path).toHaveLength(1);
      expect(done.proxy_links, path).toEqual(done.output);
      expect(pngSize(new Uint8Array(await (await fetch(done.output[0] ?? "")).arrayBuffer())), path).toEqual({ width: 64, height: 64 });
    }
    for (const path of ["/api/v3/text2img", "/api/v6/images/text2img"]) {
      expect((await generate(path, { prompt: "a lighthouse", width: "64", height: "64" })).status, path).toBe("processing");
    }
    for (const instant of ["yes", true, "true"]) {
      const queued = await generate("/api/v6/realtime/text2img", { prompt: "a lighthouse", width: "64", height: "64", instant_response: instant });
      expect(queued, String(instant)).toMatchObject({ status: "processing", output: [], messege: "Request processing", message: "Request processing", fetch_result: `${gw.url}/api/v6/realtime/fetch/${queued.id}` });
      expect(queued.tip).toContain(queued.fetch_result);
    }
  });

  it("fetches by the body's request_id at /api/v6/images/fetch and /api/v3/fetch; another tenant's id is a 404", async () => {
    const done = await generate("/api/v6/realtime/text2img", { prompt: "a lighthouse", width: "64", height: "64" });
    for (const path of ["/api/v6/images/fetch", "/api/v3/fetch"]) {
      const res = await post(path, { key: KEY, request_id: done.id }, {});
      expect(res.status, path).toBe(200);
      expect(await res.json()).toMatchObject({ status: "success", id: done.id, output: done.output });
      const other = await post(path, { key: OTHER_KEY, request_id: done.id }, {});
      expect(other.status, path).toBe(404);
      expect(await other.json()).toEqual({ status: "error", message: "Request not found" });
    }
  });

  it("makes an img2img without width and height the init image's size, as ModelsLab's v6 page says", async () => {
    const body = { model_id: "v1-5-pruned-emaonly", prompt: "women playing tennis", negative_prompt: null, init_image: `data:image/png;base64,${WIDE_B64}`, samples: "1", num_inference_steps: "2", strength: 0.7, seed: null };
    const done = await generate("/api/v6/realtime/img2img", body);
    expect(done.status).toBe("success");
    expect(done.meta).toMatchObject({ W: 768, H: 512 });
    expect(pngSize(new Uint8Array(await (await fetch(done.output[0] ?? "")).arrayBuffer()))).toEqual({ width: 768, height: 512 });
  });

  it("takes an img2img without a prompt, or with prompt null: ModelsLab needs only key, model_id and init_image", async () => {
    for (const prompt of [undefined, null]) {
      const done = await generate("/api/v6/realtime/img2img", { model_id: "v1-5-pruned-emaonly", init_image: `${imageBase}/cat.png`, width: "64", height: "64", ...(prompt === null ? { prompt } : {}) });
      expect(done.status, String(prompt)).toBe("success");
      expect(done.meta.prompt).toBe("");
    }
    // text2img still needs one.
    expect((await post("/api/v3/text2img", { key: KEY, width: "64", height: "64" }, {})).status).toBe(422);
  });
});

describe("Cerebrium (seed 004)", () => {
  const seedBody = (): Record<string, unknown> => ({ ...fixture("cerebrium-predict.json"), image: B64, file_url: `${imageBase}/image.png` });

  it("without webhook_endpoint waits and answers run_id, message and result", async () => {
    const { webhook_endpoint: _hook, ...body } = seedBody();
    const res = await post("/cerebrium/predict", body, { authorization: KEY });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { run_id: string; message: string; result: string[] };
    expect(Object.keys(out).sort()).toEqual(["message", "result", "run_id"]);
    expect(out.result).toHaveLength(1);
    expect(((await (await v1().get(`/v1/jobs/${out.run_id}`)).json()) as JobView).status).toBe("succeeded");
  });

  it("with webhook_endpoint answers run_id and message at once and POSTs the full body, signed", async () => {
    const res = await post("/cerebrium/predict", { ...seedBody(), webhook_endpoint: `${receiver.url}/cerebrium` }, { authorization: `Bearer ${KEY}` });
    const out = (await res.json()) as { run_id: string; message: string };
    expect(Object.keys(out).sort()).toEqual(["message", "run_id"]);
    const hit = await receiver.waitFor((d) => d.path === "/cerebrium" && (d.json as { run_id?: string }).run_id === out.run_id, 30_000);
    expect(hit.verified).toEqual([true]);
    expect((hit.json as { result: string[] }).result).toHaveLength(1);
  });

  it("fits the image in width x height (512 x 512 by default), its aspect kept, as sd-img-2-img's ImageOps.contain does", async () => {
    const { webhook_endpoint: _hook, file_url: _url, ...body } = seedBody();
    const fitted = (await (await post("/sd-img-2-img-webhook/predict", { ...body, image: WIDE_B64, num_inference_steps: 2 }, { authorization: KEY })).json()) as { result: string[] };
    // 768 x 512 in 512 x 512 is 512 x 341, and diffusers takes each side down to a multiple of 8.
    expect(sizeOf(fitted.result[0] ?? "")).toEqual({ width: 512, height: 336 });
    const boxed = (await (await post("/sd-img-2-img-webhook/predict", { ...body, image: WIDE_B64, num_inference_steps: 2, width: "768", height: "768" }, { authorization: KEY })).json()) as { result: string[] };
    expect(sizeOf(boxed.result[0] ?? "")).toEqual({ width: 768, height: 512 });
  });

  it("uses file_url when both it and image are sent, as sd-img-2-img's main.py reads file_url first", async () => {
    const { webhook_endpoint: _hook, ...body } = seedBody();
    const res = await post("/cerebrium/predict", { ...body, image: "bm90IGFuIGltYWdl" }, { authorization: KEY });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { result: string[] }).result).toHaveLength(1);
  });

  it("reads numbers sent as strings as pydantic does, and a request without seed has seed 0, the Item's default", async () => {
    const { webhook_endpoint: _hook, seed: _seed, ...body } = seedBody();
    const res = await post("/cerebrium/predict", { ...body, num_inference_steps: "3", guidance_scale: "6.5", num_images_per_prompt: "1" }, { authorization: KEY });
    expect(res.status).toBe(200);
    const runId = ((await res.json()) as { run_id: string }).run_id;
    const job = (await (await v1().get(`/v1/jobs/${runId}`)).json()) as JobView & { parameters: Record<string, unknown> };
    expect(job.seed).toBe(0);
    expect(job.parameters).toMatchObject({ steps: 3, guidance_scale: 6.5 });
  });

  it("takes file_url instead of image, and answers errors in its shape", async () => {
    const { image: _image, webhook_endpoint: _hook, ...body } = seedBody();
    expect((await post("/cerebrium/predict", body, { authorization: KEY })).status).toBe(200);
    const bad = await post("/cerebrium/predict", { prompt: "x", image: "bm90IGFuIGltYWdl" }, { authorization: KEY });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ run_id: null, message: expect.stringContaining("image") });
    expect((await post("/cerebrium/predict", body, { authorization: "nope" })).status).toBe(401);
  });
});

describe("RunPod worker (seed 000)", () => {
  const seedBody = () => {
    const body = fixture("runpod-img2img.json") as { input: Record<string, unknown> };
    return { input: { ...body.input, init_images: [B64], width: 64, height: 64 } };
  };

  it("runs img2img by api_name: run → status COMPLETED with the A1111 response as output", async () => {
    const started = (await (await post("/runpod/run", seedBody(), { authorization: `Bearer ${KEY}` })).json()) as { id: string; status: string };
    expect(started.status).toBe("IN_QUEUE");
    const done = await poll(async () => {
      const s = (await (await fetch(`${gw.url}/runpod/status/${started.id}`, { headers: { authorization: KEY } })).json()) as { status: string; output?: { images: string[]; info: string } };
      return s.status === "COMPLETED" ? s : undefined;
    });
    expect(sizeOf(done.output?.images[0] ?? "")).toEqual({ width: 64, height: 64 });
    expect(JSON.parse(done.output?.info ?? "{}")).toMatchObject({ seed: 42 });
  });

  it("answers runsync, getModels, getOptions and setOptions, and cancels", async () => {
    const sync = (await (await post("/runpod/runsync", seedBody(), { authorization: KEY })).json()) as { status: string; output: { images: string[] } };
    expect(sync.status).toBe("COMPLETED");
    const models = (await (await post("/runpod/runsync", { input: { api_name: "getModels" } }, { authorization: KEY })).json()) as { status: string; output: { title: string }[] };
    expect(models.status).toBe("COMPLETED");
    expect(models.output.map((m) => m.title)).toContain("v1-5-pruned-emaonly.safetensors [6ce0161689]");
    // Through /run, the answer is kept for a later /status call, as RunPod keeps results.
    const queued = (await (await post("/runpod/run", { input: { api_name: "getModels" } }, { authorization: KEY })).json()) as { id: string };
    const later = (await (await fetch(`${gw.url}/runpod/status/${queued.id}`, { headers: { authorization: KEY } })).json()) as { status: string; output: unknown[] };
    expect(later.status).toBe("COMPLETED");
    expect(later.output.length).toBeGreaterThan(0);
    const set = await post("/runpod/runsync", { input: { api_name: "setOptions", sd_model_checkpoint: "chilloutmix-Ni" } }, { authorization: KEY });
    expect(set.status).toBe(200);
    const opts = (await (await post("/runpod/runsync", { input: { api_name: "getOptions" } }, { authorization: KEY })).json()) as { output: { sd_model_checkpoint: string } };
    // Reported under its listed title, as A1111 does after a switch.
    expect(opts.output.sd_model_checkpoint).toBe("chilloutmix-Ni.safetensors [7234b76e42]");
    await post("/runpod/runsync", { input: { api_name: "setOptions", sd_model_checkpoint: "v1-5-pruned-emaonly" } }, { authorization: KEY });

    await sim.config({ msPerImage: 3000 });
    try {
      const started = (await (await post("/runpod/run", seedBody(), { authorization: KEY })).json()) as { id: string };
      const canceled = (await (await post(`/runpod/cancel/${started.id}`, {}, { authorization: KEY })).json()) as { status: string };
      expect(canceled.status).toBe("CANCELLED");
    } finally {
      await sim.config({ msPerImage: 20 });
    }
  });

  it("takes an init image over 2 MB (Durable Object storage keeps only references)", async () => {
    const random = randomBytes(1024 * 1024 * 3);
    const noise = Buffer.from(encodePng(1024, 1024, (x, y) => {
      const i = (y * 1024 + x) * 3;
      return [random[i] ?? 0, random[i + 1] ?? 0, random[i + 2] ?? 0];
    }));
    expect(noise.byteLength).toBeGreaterThan(2.5 * 1024 * 1024);
    const res = await post("/runpod/runsync", { input: { ...seedBody().input, init_images: [noise.toString("base64")] } }, { authorization: KEY });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { status: string; output: { images: string[]; parameters: { init_images: unknown } } };
    expect(out.status).toBe("COMPLETED");
    expect(out.output.parameters.init_images).toBeNull();
  });

  it("answers a bad key with 401 and a bad api_name with 422", async () => {
    expect((await post("/runpod/run", seedBody(), { authorization: "nope" })).status).toBe(401);
    const bad = await post("/runpod/run", { input: { api_name: "upscale" } }, { authorization: KEY });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ error: expect.stringContaining("input.api_name") });
    const wide = await post("/runpod/run", { input: { ...seedBody().input, width: 4096 } }, { authorization: KEY });
    expect(wide.status).toBe(422);
    expect(await wide.json()).toMatchObject({ error: expect.stringContaining("input.width") });
    const missing = await fetch(`${gw.url}/runpod/status/nope`, { headers: { authorization: KEY } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: expect.any(String) });
  });
});

describe("SD on EKS (seed 001)", () => {
  const task = (id: string, initImage: string): { task: { metadata: Record<string, unknown>; content: Record<string, unknown> } } => {
    const body = fixture("eks-image-to-image.json") as { task: { metadata: Record<string, unknown>; content: Record<string, unknown> } };
    const content: Record<string, unknown> = { ...body.task.content, width: 64, height: 64, init_images: [initImage] };
    return { task: { metadata: { ...body.task.metadata, id, context: { order: id } }, content } };
  };

  it("takes the seed's task, answers output_location r2://<bucket>/<prefix>/<id>, and notifies the tenant's default webhook with signed links to the images and the .out", async () => {
    const body = fixture("eks-image-to-image.json") as { task: { content: Record<string, unknown> } };
    body.task.content.init_images = [`${imageBase}/cat.png`];
    const res = await post("/eks/v1/tasks", body, { "x-api-key": KEY });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: "test-i2i", id_task: "test-i2i", runtime: "sdruntime", output_location: "r2://easel-images/output/test-i2i" });
    const hit = await receiver.waitFor((d) => d.path === "/sns" && (d.json as { id?: string }).id === "test-i2i", 30_000);
    expect(hit.verified).toEqual([true]);
    const note = hit.json as { id: string; result: boolean; image_url: string[]; output_url: string; context: string };
    expect(Object.keys(note).sort()).toEqual(["context", "id", "image_url", "output_url", "result"]);
    expect(note).toMatchObject({ result: true, context: "" });
    expect(pngSize(new Uint8Array(await (await fetch(note.image_url[0] ?? "")).arrayBuffer()))).toEqual({ width: 512, height: 512 });
    // The .out SD-on-EKS's queue agent writes beside the images, here a signed link: read as its users read it.
    const out = await fetch(note.output_url);
    expect(out.status).toBe(200);
    expect(((await out.json()) as { parameters: Record<string, unknown> }).parameters).toMatchObject({ id_task: "test-i2i", image_seed: expect.any(String), error_msg: "" });
    const status = (await (await fetch(`${gw.url}/eks/v1/tasks/test-i2i`, { headers: { "x-api-key": KEY } })).json()) as { status: string; images: string[]; run_id: string };
    expect(status).toMatchObject({ status: "succeeded", output_location: "r2://easel-images/output/test-i2i" });
    expect(status.images).toHaveLength(1);
    expect(((await (await v1().get(`/v1/jobs/${status.run_id}`)).json()) as JobView).status).toBe("succeeded");
  });

  it("refuses a repeated task id with 409", async () => {
    const res = await post("/eks/v1/tasks", task("test-i2i", `${imageBase}/cat.png`), { authorization: `Bearer ${KEY}` });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ message: expect.stringContaining("test-i2i") });
  });

  it("reads s3:// init images from the configured S3 store and returns context in the webhook", async () => {
    const res = await post("/eks/v1/tasks", task("from-s3", "s3://inputs/cats/cat.png"), { "x-api-key": KEY });
    expect(res.status).toBe(200);
    const hit = await receiver.waitFor((d) => (d.json as { id?: string }).id === "from-s3", 30_000);
    expect(hit.json).toMatchObject({ result: true, context: { order: "from-s3" } });
  });

  it("keeps each account's tasks in its own place, the same location named by two included, and apart from the core's files", async () => {
    // The seed's own task from another account: its images under that account's root, the first account's left as they were.
    const elsewhere = await post("/eks/v1/tasks", task("test-i2i", `${imageBase}/cat.png`), { "x-api-key": OTHER_KEY });
    expect(elsewhere.status).toBe(200);
    expect(await elsewhere.json()).toMatchObject({ output_location: "r2://easel-images/output/test-i2i" });
    const other = await fetch(`${gw.url}/eks/v1/tasks/test-i2i`, { headers: { "x-api-key": OTHER_KEY } });
    expect(((await other.json()) as { run_id: string }).run_id).not.toBe(((await (await fetch(`${gw.url}/eks/v1/tasks/test-i2i`, { headers: { "x-api-key": KEY } })).json()) as { run_id: string }).run_id);
    // outputs/<run id> is where a /v1 job's images live in R2; a task named for that place writes under its tenant's root.
    const made = await v1().post("/v1/jobs", { type: "txt2img", prompt: "kept", width: 80, height: 72 });
    expect(made.status, await made.clone().text()).toBe(202);
    const job = (await made.json()) as JobView;
    expect((await waitForJob(v1(), job.id)).status).toBe("succeeded");
    const named = task(job.id, `${imageBase}/cat.png`);
    named.task.metadata.prefix = "outputs";
    const res = await post("/eks/v1/tasks", named, { "x-api-key": KEY });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ output_location: `r2://easel-images/outputs/${job.id}` });
    expect((await waitForJob(v1(), res.headers.get("x-easel-run-id") ?? "")).status).toBe("succeeded");
    const image = await fetch((await jobOf(job.id)).output[0]?.url ?? "");
    expect(pngSize(new Uint8Array(await image.arrayBuffer()))).toEqual({ width: 80, height: 72 });
  });

  it("lets a task whose intake failed be sent again, and answers GET of an unknown task with 404", async () => {
    const body = task("retry-me", `${imageBase}/once-missing/cat.png`);
    const first = await post("/eks/v1/tasks", body, { "x-api-key": KEY });
    expect(first.status).toBe(422);
    expect(await first.json()).toMatchObject({ errors: [{ path: "task.content.init_images.0" }] });
    expect((await post("/eks/v1/tasks", body, { "x-api-key": KEY })).status).toBe(200);
    expect((await post("/eks/v1/tasks", body, { "x-api-key": KEY })).status).toBe(409);
    const unknown = await fetch(`${gw.url}/eks/v1/tasks/never-sent`, { headers: { "x-api-key": KEY } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ message: expect.any(String) });
  });

  it("refuses an unknown model and a missing S3 object with 422", async () => {
    const unknown = task("bad-model", `${imageBase}/cat.png`);
    unknown.task.content.alwayson_scripts = { sd_model_checkpoint: "nope.safetensors" };
    expect((await post("/eks/v1/tasks", unknown, { "x-api-key": KEY })).status).toBe(422);
    expect((await post("/eks/v1/tasks", task("missing-s3", "s3://inputs/none.png"), { "x-api-key": KEY })).status).toBe(422);
  });
});

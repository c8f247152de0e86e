/**
 * Cerebrium and ModelsLab at the paths their users' code calls today, with only the host changed:
 * seed 004's `run.cerebrium.ai/<app>/predict`, Cerebrium v4's `/v4/<project>/<app>/<function>`,
 * ModelsLab's v6 `images/` and `realtime/` paths. Also: every new route is in the OpenAPI document.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { api, pngSize, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";

const KEY = "sk_drop_in";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PNG = Buffer.from(encodePng(64, 48, (x, y) => [x * 4, y * 5, 77]));
const B64 = PNG.toString("base64");

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let dir: string;

const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(resolve(import.meta.dirname, "../fixtures/seeds", name), "utf8")) as Record<string, unknown>;

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } });
  receiver = await startReceiver({ secrets: [SECRET] });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-drop-in-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ u: { api_keys: [KEY], webhook_secrets: [SECRET] } }),
      BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url }]),
      ENDPOINTS: JSON.stringify({ "txt-only-app": { types: ["txt2img"] } }),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(gw.url + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
const sizeOf = (b64: string | undefined) => pngSize(new Uint8Array(Buffer.from(b64 ?? "", "base64")));
const jobOf = async (id: string) => (await (await api(gw.url, KEY).get(`/v1/jobs/${id}`)).json()) as JobView;

describe("Cerebrium at its own URLs", () => {
  /** Seed 004's body with a real image and no webhook: the synchronous call. */
  const seedBody = () => {
    const { webhook_endpoint: _hook, file_url: _url, ...rest } = fixture("cerebrium-predict.json");
    return { ...rest, image: B64 };
  };

  it("seed 004's https://run.cerebrium.ai/sd-img-2-img-webhook/predict, synchronous: {run_id, message, result}", async () => {
    const res = await post("/sd-img-2-img-webhook/predict", seedBody(), { authorization: KEY });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { run_id: string; message: string; result: string[] };
    expect(out.message).toEqual(expect.any(String));
    expect(out.result).toHaveLength(1);
    // The 64 x 48 image fitted in sd-img-2-img's default 512 x 512 box.
    expect(sizeOf(out.result[0])).toEqual({ width: 512, height: 384 });
    expect((await jobOf(out.run_id)).status).toBe("succeeded");
  });

  it("seed 004's URL with webhook_endpoint: {run_id, message} at once, the full body POSTed there, signed", async () => {
    const res = await post("/sd-img-2-img-webhook/predict", { ...seedBody(), webhook_endpoint: `${receiver.url}/cb-seed` }, { authorization: `Bearer ${KEY}` });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { run_id: string };
    expect(Object.keys(out).sort()).toEqual(["message", "run_id"]);
    const hit = await receiver.waitFor((d) => d.path === "/cb-seed", 30_000);
    expect(hit.verified).toEqual([true]);
    expect(hit.json).toMatchObject({ run_id: out.run_id, result: [expect.any(String)] });
  });

  it("v4 /v4/{project}/{app}/predict synchronous: the result and run_time_ms", async () => {
    const res = await post("/v4/p-1234abcd/sd-img-2-img/predict", seedBody(), { authorization: `Bearer ${KEY}` });
    expect(res.status).toBe(200);
    const out = (await res.json()) as { run_id: string; result: string[]; run_time_ms: number };
    expect(sizeOf(out.result[0])).toEqual({ width: 512, height: 384 });
    expect(out.run_time_ms).toEqual(expect.any(Number));
  });

  it("v4 ?async=true&webhookEndpoint=: 202 {run_id, message} at once, the result delivered to webhookEndpoint", async () => {
    const hook = encodeURIComponent(`${receiver.url}/cb-v4`);
    const res = await post(`/v4/p-1234abcd/sd-img-2-img/predict?async=true&webhookEndpoint=${hook}`, seedBody(), { authorization: `Bearer ${KEY}` });
    expect(res.status).toBe(202);
    const out = (await res.json()) as { run_id: string };
    const hit = await receiver.waitFor((d) => d.path === "/cb-v4", 30_000);
    expect(hit.verified).toEqual([true]);
    expect(hit.json).toMatchObject({ run_id: out.run_id, result: [expect.any(String)] });
    // Python's requests writes params={"async": True} as "True".
    const python = await post(`/v4/p-1234abcd/sd-img-2-img/predict?async=True&webhookEndpoint=${hook}`, seedBody(), { authorization: `Bearer ${KEY}` });
    expect(python.status).toBe(202);
  });

  it("keeps /cerebrium/predict, and leaves other two-segment routes alone", async () => {
    expect((await post("/cerebrium/predict", seedBody(), { authorization: KEY })).status).toBe(200);
    // GET on a predict path, and a POST to a path that only looks alike, are plain 404s.
    expect((await fetch(`${gw.url}/some-app/predict`, { headers: { authorization: KEY } })).status).toBe(404);
    expect((await post("/some-app/predicts", seedBody(), { authorization: KEY })).status).toBe(404);
  });

  it("answers each route's bad requests as {run_id: null, message} with a 4xx", async () => {
    for (const path of ["/sd-img-2-img-webhook/predict", "/v4/p-1/app/predict"]) {
      const unauth = await post(path, seedBody(), { authorization: "nope" });
      expect(unauth.status, path).toBe(401);
      expect(await unauth.json()).toMatchObject({ run_id: null, message: expect.any(String) });
      const bad = await post(path, { prompt: "x", image: "bm90IGFuIGltYWdl" }, { authorization: KEY });
      expect(bad.status, path).toBe(422);
      expect(await bad.json()).toMatchObject({ run_id: null, errors: [{ path: "image" }] });
    }
    const badHook = await post("/v4/p-1/app/predict?async=true&webhookEndpoint=ftp%3A%2F%2Fx", seedBody(), { authorization: KEY });
    expect(badHook.status).toBe(422);
    expect(await badHook.json()).toMatchObject({ run_id: null, errors: [{ path: "webhookEndpoint" }] });
    // An app that ENDPOINTS says serves txt2img only cannot take seed 004's img2img.
    const wrongType = await post("/txt-only-app/predict", seedBody(), { authorization: KEY });
    expect(wrongType.status).toBe(422);
    expect(await wrongType.json()).toMatchObject({ run_id: null, errors: [{ path: "app_name" }] });
  });
});

describe("ModelsLab v6 paths", () => {
  type Reply = { status: string; id: string; fetch_result?: string; output?: string[]; meta?: Record<string, unknown>; message?: string };

  async function fetchUntilDone(url: string): Promise<Reply> {
    for (let i = 0; i < 200; i++) {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: KEY }) });
      const reply = (await res.json()) as Reply;
      if (reply.status !== "processing") return reply;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("still processing");
  }

  for (const [path, fetchPath] of [
    ["/api/v6/images/text2img", "/api/v6/images/fetch/"],
    ["/api/v6/realtime/text2img", "/api/v6/realtime/fetch/"],
  ] as const) {
    it(`${path}: processing, then fetch at ${fetchPath}{id} answers success with output links`, async () => {
      const res = await post(path, { key: KEY, model_id: "chilloutmix-Ni", prompt: "a harbour at dawn", width: "64", height: "64", samples: "1", seed: "5" });
      expect(res.status).toBe(200);
      const first = (await res.json()) as Reply;
      expect(first.status === "processing" || first.status === "success").toBe(true);
      if (first.status === "processing") expect(first.fetch_result).toBe(`${gw.url}${fetchPath}${first.id}`);
      const done = await fetchUntilDone(`${gw.url}${fetchPath}${first.id}`);
      expect(done).toMatchObject({ status: "success", id: first.id, meta: { model: "chilloutmix-Ni", seed: 5, W: 64, H: 64 } });
      const png = await fetch(done.output?.[0] ?? "");
      expect(pngSize(new Uint8Array(await png.arrayBuffer()))).toEqual({ width: 64, height: 64 });
    });
  }

  it("/api/v6/images/img2img with seed 002's body, the image as base64 when base64 is yes", async () => {
    const body = { ...fixture("modelslab-img2img.json"), key: KEY, init_image: `data:image/png;base64,${B64}`, width: "64", height: "64", base64: "yes", model_id: "v1-5-pruned-emaonly" };
    const first = (await (await post("/api/v6/images/img2img", body)).json()) as Reply;
    const done = await fetchUntilDone(`${gw.url}/api/v6/images/fetch/${first.id}`);
    expect(done.status).toBe("success");
    expect(sizeOf(done.output?.[0])).toEqual({ width: 64, height: 64 });
    expect((await jobOf(first.id)).type).toBe("img2img");
  });

  it("/api/v6/images/text2img with the yes/no fields as JSON booleans, as ModelsLab's SDKs send them: base64: true answers base64", async () => {
    const body = { key: KEY, prompt: "a harbour at dawn", width: 64, height: 64, samples: 1, base64: true, safety_checker: false, enhance_prompt: true, tomesd: true };
    const res = await post("/api/v6/images/text2img", body);
    expect(res.status).toBe(200);
    const first = (await res.json()) as Reply;
    const done = await fetchUntilDone(`${gw.url}/api/v6/images/fetch/${first.id}`);
    expect(done.status).toBe("success");
    expect(sizeOf(done.output?.[0])).toEqual({ width: 64, height: 64 });
  });

  it("answers each route's bad requests as {status: error, message} with a 4xx", async () => {
    for (const path of ["/api/v6/images/text2img", "/api/v6/images/img2img", "/api/v6/realtime/text2img", "/api/v6/realtime/img2img", "/api/v6/images/fetch/run_x", "/api/v6/realtime/fetch/run_x"]) {
      const unauth = await post(path, { key: "wrong", prompt: "x" });
      expect(unauth.status, path).toBe(401);
      expect(await unauth.json()).toMatchObject({ status: "error", message: expect.any(String) });
    }
    const wide = await post("/api/v6/images/text2img", { key: KEY, prompt: "x", width: "4096" });
    expect(wide.status).toBe(422);
    expect(await wide.json()).toMatchObject({ status: "error", errors: [{ path: "width" }] });
    const noImage = await post("/api/v6/realtime/img2img", { key: KEY, prompt: "x" });
    expect(noImage.status).toBe(422);
    expect(await noImage.json()).toMatchObject({ status: "error" });
    const missing = await post("/api/v6/images/fetch/run_aaaaaaaaaaaaaaaaaaaaaaaaaa", { key: KEY });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ status: "error" });
  });
});

describe("the OpenAPI document", () => {
  it("lists every dialect path, each declared once", async () => {
    const doc = (await (await fetch(`${gw.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    for (const path of [
      "/v2/{endpoint_id}/run",
      "/v2/{endpoint_id}/runsync",
      "/v2/{endpoint_id}/status/{id}",
      "/v2/{endpoint_id}/status-sync/{id}",
      "/v2/{endpoint_id}/stream/{id}",
      "/v2/{endpoint_id}/cancel/{id}",
      "/v2/{endpoint_id}/retry/{id}",
      "/v2/{endpoint_id}/health",
      "/v2/{endpoint_id}/purge-queue",
      "/runpod/run",
      "/{app_name}/predict",
      "/v4/{project_id}/{app_name}/{function}",
      "/cerebrium/predict",
      "/{stage}/v1alpha2",
      "/{stage}/v1alpha2/",
      "/{stage}/v1alpha1",
      "/{stage}/v1alpha1/",
      "/api/v6/images/text2img",
      "/api/v6/images/img2img",
      "/api/v6/images/fetch/{id}",
      "/api/v6/images/fetch",
      "/api/v3/fetch",
      "/api/v6/realtime/text2img",
      "/api/v6/realtime/img2img",
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    expect(Object.keys(doc.paths["/v2/{endpoint_id}/status-sync/{id}"] ?? {}).sort()).toEqual(["get", "post"]);
    expect((await fetch(`${gw.url}/docs`)).status).toBe(200);
  });
});

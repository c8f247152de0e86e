/**
 * Replicate's own JavaScript client (`replicate` 1.4.0, unmodified) against a real gateway, pointed at it
 * as Replicate's docs say: `baseUrl: "<gateway>/v1"` and the API key. Only the host changes. What the
 * Python client sends and reads (`Token` auth, `Prefer: wait`, the model and version objects) is sent raw.
 *
 * The gateway is served as `https://` in production, and the client turns only `https:` outputs into
 * `FileOutput`s: the gateway's PUBLIC_BASE_URL here is https, and the client's `fetch` stands for the TLS
 * front (it sends the same request over plain HTTP to wrangler dev).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Replicate, { validateWebhook, type Prediction } from "replicate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { api, pngSize, type JobView } from "./support/client";
import { freePort, startGateway, startSimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";

const KEY = "r8_replicate_user";
const OTHER = "r8_other_tenant";
const LIMITED = "r8_limited_tenant";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const FLUX_VERSION = "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637";
/** Listed on its own (an `ENDPOINTS` key), under no model name: what a model page's snippet pins. */
const PINNED_VERSION = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b";

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let stuck: Awaited<ReturnType<typeof startSimulatorProcess>>;
let slow: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let dir: string;
let publicBase: string;

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 30 }) } });
  // Takes every job and never answers: a prediction there stays running until canceled.
  stuck = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ hang: true }) } });
  // Long enough for a few progress readings (one a second) while it generates.
  slow = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 3500 }) } });
  receiver = await startReceiver({ secrets: [SECRET] });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-replicate-"));
  const port = await freePort();
  publicBase = `https://127.0.0.1:${port}`;
  gw = await startGateway({
    port,
    persistDir: dir,
    vars: {
      PUBLIC_BASE_URL: publicBase,
      TENANTS: JSON.stringify({
        rep: { api_keys: [KEY], webhook_secrets: [SECRET] },
        other: { api_keys: [OTHER], webhook_secrets: [] },
        limited: { api_keys: [LIMITED], webhook_secrets: [], rate_limit: { requests: 1, period_s: 3600 } },
      }),
      BACKENDS: JSON.stringify([
        { name: "sim", kind: "a1111", url: sim.url },
        { name: "stuck", kind: "a1111", url: stuck.url, max_concurrency: 4, models: ["nothing-listed"] },
        { name: "slow", kind: "a1111", url: slow.url, models: ["nothing-listed"] },
        // Nothing listens there: workflow predictions are accepted onto it, and this file only looks at intake.
        { name: "comfy", kind: "comfyui", url: "http://127.0.0.1:9", types: ["workflow"], models: ["sd_xl_base_1.0.safetensors"] },
      ]),
      ENDPOINTS: JSON.stringify({
        // Pinned: a job without a model would otherwise fit the stuck backend too.
        "stability-ai/sdxl": { backend: "sim" },
        "black-forest-labs/flux-schnell": { backend: "sim", types: ["txt2img"], version: FLUX_VERSION },
        "acme/never-ends": { backend: "stuck" },
        "acme/slow": { backend: "slow" },
        "acme/any-comfyui-workflow": { types: ["workflow"] },
        [PINNED_VERSION]: { backend: "sim" },
      }),
      ALLOW_PRIVATE_URLS: "true",
      WEBHOOK_RETRY_SCHEDULE: "1,1,1",
      URL_SIGNING_SECRET: "e2e",
    },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await stuck?.stop();
  await slow?.stop();
  await receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The TLS front: the same request, over plain HTTP, to wrangler dev. */
const viaFront: typeof fetch = (input, init) => {
  const url = input instanceof Request ? input.url : String(input);
  const plain = url.replace(publicBase, gw.url);
  return input instanceof Request ? fetch(new Request(plain, input), init) : fetch(plain, init);
};
const client = (auth = KEY) => new Replicate({ auth, baseUrl: `${publicBase}/v1`, fetch: viaFront });
const raw = (path: string, init: RequestInit & { auth?: string } = {}) =>
  fetch(gw.url + path, { ...init, headers: { authorization: init.auth ?? `Bearer ${KEY}`, "content-type": "application/json", ...init.headers } });
const bytesOf = async (file: unknown): Promise<Uint8Array> => {
  if (!(file instanceof ReadableStream) || !("blob" in file) || typeof file.blob !== "function") throw new Error(`not a FileOutput: ${String(file)}`);
  return new Uint8Array(await ((await file.blob()) as Blob).arrayBuffer());
};
const tinyPng = () => encodePng(64, 64, (x, y) => [x * 4, y * 4, 128]);
const canonical = async (id: string): Promise<JobView> => (await (await api(gw.url, KEY).get(`/v1/jobs/${id}`)).json()) as JobView;

describe("replicate.run", () => {
  it("runs owner/name on the operator's backend; outputs are FileOutputs whose bytes are PNGs, fetched without a key", async () => {
    const output = (await client().run("stability-ai/sdxl", { input: { prompt: "a lighthouse", width: 64, height: 64, num_outputs: 2, seed: 7, scheduler: "K_EULER", unknown_knob: true } })) as unknown[];
    expect(output).toHaveLength(2);
    for (const file of output) {
      expect(String(file)).toMatch(new RegExp(`^${publicBase}/v1/outputs/`));
      expect(pngSize(await bytesOf(file))).toEqual({ width: 64, height: 64 });
    }
  });

  it("runs owner/name:version, and aspect_ratio picks a size near one megapixel", async () => {
    let last: Prediction | undefined;
    const output = (await client().run(`black-forest-labs/flux-schnell:${FLUX_VERSION}`, { input: { prompt: "a fox", aspect_ratio: "16:9", num_inference_steps: 4 } }, (p) => (last = p))) as unknown[];
    expect(output).toHaveLength(1);
    expect(pngSize(await bytesOf(output[0]))).toEqual({ width: 1368, height: 768 });
    expect(last).toMatchObject({ model: "black-forest-labs/flux-schnell", version: FLUX_VERSION, status: "succeeded" });
    // The prediction is a canonical job under the same id.
    expect(await canonical(last?.id ?? "")).toMatchObject({ status: "succeeded", type: "txt2img", output: [{ width: 1368, height: 768 }] });
  });

  it("img2img from a data URI input and from a Buffer, which the client uploads to /v1/files first", async () => {
    const dataUri = `data:image/png;base64,${Buffer.from(tinyPng()).toString("base64")}`;
    for (const [image, sent] of [
      [dataUri, dataUri],
      // The client would fall back to a data URI if the upload failed with a 5xx: the input shows it did not.
      [Buffer.from(tinyPng()), expect.stringMatching(new RegExp(`^${publicBase}/v1/files/[0-9a-f]{32}$`))],
    ] as const) {
      let last: Prediction | undefined;
      const output = (await client().run("stability-ai/sdxl", { input: { prompt: "a watercolor", image, prompt_strength: 0.6 } }, (p) => (last = p))) as unknown[];
      expect(output).toHaveLength(1);
      expect(pngSize(await bytesOf(output[0]))).toEqual({ width: 512, height: 512 });
      expect(last?.input).toMatchObject({ image: sent, prompt_strength: 0.6 });
      expect(await canonical(last?.id ?? "")).toMatchObject({ type: "img2img", status: "succeeded" });
    }
  });

  it("an unlisted model or version is a 404 problem", async () => {
    await expect(client().run("nobody/nothing", { input: { prompt: "x" } })).rejects.toMatchObject({ response: { status: 404 } });
    for (const [path, body] of [
      ["/v1/models/nobody/nothing/predictions", { input: { prompt: "x" } }],
      ["/v1/predictions", { version: "0".repeat(64), input: { prompt: "x" } }],
      ["/v1/predictions", { version: `stability-ai/sdxl:${FLUX_VERSION}`, input: { prompt: "x" } }],
    ] as const) {
      const res = await raw(path, { method: "POST", body: JSON.stringify(body) });
      expect(res.status).toBe(404);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(await res.json()).toMatchObject({ title: expect.any(String), detail: expect.any(String), status: 404 });
    }
  });

  it("a bad input value is a 422 problem naming the input; unknown inputs are ignored", async () => {
    const res = await raw("/v1/models/stability-ai/sdxl/predictions", { method: "POST", body: JSON.stringify({ input: { prompt: "x", num_outputs: 9, whatever: 1 } }) });
    expect(res.status).toBe(422);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    const problem = (await res.json()) as { detail: string; status: number };
    expect(problem.status).toBe(422);
    expect(problem.detail).toContain("input.num_outputs");
  });
});

describe("predictions", () => {
  it("create then wait; the webhook (start and completed, as filtered) verifies with the client's validateWebhook", async () => {
    const replicate = client();
    const created = await replicate.predictions.create({
      model: "stability-ai/sdxl",
      input: { prompt: "a harbour", width: 64, height: 64 },
      webhook: `${receiver.url}/replicate`,
      webhook_events_filter: ["start", "completed"],
    });
    expect(created).toMatchObject({ status: "starting", model: "stability-ai/sdxl", webhook: `${receiver.url}/replicate`, webhook_events_filter: ["start", "completed"], urls: { get: `${publicBase}/v1/predictions/${created.id}` } });
    const done = await replicate.wait(created, {});
    expect(done.status).toBe("succeeded");
    expect(done.output).toHaveLength(1);

    const { key } = await replicate.webhooks.default.secret.get();
    expect(key).toBe(SECRET);
    const forThis = (status: string) => (d: { path: string; json: unknown }) => d.path === "/replicate" && (d.json as Prediction | undefined)?.id === created.id && (d.json as Prediction).status === status;
    for (const status of ["processing", "succeeded"]) {
      const delivery = await receiver.waitFor(forThis(status), 15_000);
      const request = new Request(`${receiver.url}/replicate`, { method: "POST", headers: delivery.headers, body: delivery.body });
      expect(await validateWebhook(request, key)).toBe(true);
      expect(await validateWebhook({ id: delivery.headers["webhook-id"] ?? "", timestamp: delivery.headers["webhook-timestamp"] ?? "", signature: delivery.headers["webhook-signature"] ?? "", body: delivery.body, secret: "whsec_bm90IHRoZSBrZXk=" })).toBe(false);
    }
    const completed = (await receiver.waitFor(forThis("succeeded"), 1000)).json as Prediction;
    expect(completed.output).toEqual([expect.stringMatching(new RegExp(`^${publicBase}/v1/outputs/`))]);
  });

  it("without a filter, the webhook hears the end only (output and completed)", async () => {
    const replicate = client();
    const created = await replicate.predictions.create({ model: "stability-ai/sdxl", input: { prompt: "a quay", width: 64, height: 64 }, webhook: `${receiver.url}/default-events` });
    const mine = (d: { path: string; json: unknown }) => d.path === "/default-events" && (d.json as Prediction | undefined)?.id === created.id;
    const end = await receiver.waitFor(mine, 15_000);
    expect(end.verified).toEqual([true]);
    expect(end.json).toMatchObject({ status: "succeeded", output: [expect.any(String)] });
    // Deliveries go in order, so a start event would have come before the end.
    expect(receiver.deliveries.filter(mine)).toHaveLength(1);
  });

  it("logs: the prediction as it runs, its tqdm line moving, each signed; then completed, after them", async () => {
    const created = await client().predictions.create({ model: "acme/slow", input: { prompt: "a lighthouse", width: 64, height: 64, num_inference_steps: 20 }, webhook: `${receiver.url}/logs`, webhook_events_filter: ["logs", "completed"] });
    const mine = (d: { path: string; json: unknown }) => d.path === "/logs" && (d.json as Prediction | undefined)?.id === created.id;
    await receiver.waitFor((d) => mine(d) && (d.json as Prediction).status === "succeeded", 30_000);
    const bodies = receiver.deliveries.filter(mine);
    expect(bodies.every((d) => d.verified[0] === true)).toBe(true);
    const running = bodies.slice(0, -1).map((d) => d.json as Prediction);
    expect(running.length).toBeGreaterThanOrEqual(2);
    expect(running.every((p) => p.status === "processing" && p.output === null)).toBe(true);
    // The Python client's `prediction.progress` reads the last `N%|…| step/steps` line.
    const percents = running.map((p) => Number(/(\d+)%\|[^|]*\| (\d+)\/20\n$/.exec(p.logs ?? "")?.[1]));
    expect(percents.every((n) => n >= 0 && n < 100)).toBe(true);
    expect(new Set(percents).size).toBeGreaterThan(1);
    expect(new Set(bodies.map((d) => d.headers["webhook-id"])).size).toBe(bodies.length);
    expect(bodies.at(-1)?.json).toMatchObject({ status: "succeeded", logs: "100%|██████████| 20/20\n" });
  });

  it("completed is retried until the receiver takes it, under the same webhook-id", async () => {
    let calls = 0;
    const flaky = await startReceiver({ secrets: [SECRET], answer: () => (++calls === 1 ? { status: 500 } : { status: 200 }) });
    try {
      const created = await client().predictions.create({ model: "stability-ai/sdxl", input: { prompt: "a jetty", width: 64, height: 64 }, webhook: `${flaky.url}/flaky` });
      const taken = await flaky.waitFor((d) => d.answered === 200, 20_000);
      const [first] = flaky.deliveries;
      expect(first?.answered).toBe(500);
      expect(taken.headers["webhook-id"]).toBe(first?.headers["webhook-id"]);
      expect(taken.verified).toEqual([true]);
      expect(taken.json).toMatchObject({ id: created.id, status: "succeeded" });
    } finally {
      await flaky.close();
    }
  });

  it("stream: output events as FileOutputs, then done; the link is signed and needs no key", async () => {
    const events: { event: string; data: unknown }[] = [];
    for await (const e of client().stream("stability-ai/sdxl", { input: { prompt: "a reef", width: 64, height: 64, num_outputs: 2 } })) events.push({ event: e.event, data: e.data });
    expect(events.map((e) => e.event)).toEqual(["output", "output", "done"]);
    for (const e of events.slice(0, 2)) expect(pngSize(await bytesOf(e.data))).toEqual({ width: 64, height: 64 });

    const created = await client().predictions.create({ model: "stability-ai/sdxl", input: { prompt: "a reef", width: 64, height: 64 } });
    // Every event carries an id, as Replicate's do: replicate-python's decoder drops an event without one.
    const text = await (await viaFront(created.urls.stream ?? "")).text();
    const blocks = text.split("\n\n").filter((b) => /^event: /m.test(b));
    expect(blocks.map((b) => /^event: (.*)$/m.exec(b)?.[1])).toEqual(["output", "done"]);
    const ids = blocks.map((b) => /^id: (.+)$/m.exec(b)?.[1]);
    expect(ids.every((id) => id !== undefined)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const link = new URL(created.urls.stream ?? "");
    link.searchParams.set("tenant", "other");
    const forged = await viaFront(link.toString());
    expect(forged.status).toBe(403);
    expect(forged.headers.get("content-type")).toContain("application/problem+json");
  });

  it("a deployment's prediction: the same models, reported with its deployment", async () => {
    const replicate = client();
    const created = await replicate.deployments.predictions.create("stability-ai", "sdxl", { input: { prompt: "a pier", width: 64, height: 64 } });
    expect(created).toMatchObject({ status: "starting", model: "stability-ai/sdxl", deployment: "stability-ai/sdxl" });
    expect(await replicate.wait(created, {})).toMatchObject({ status: "succeeded", output: [expect.any(String)] });
    await expect(replicate.deployments.predictions.create("nobody", "nothing", { input: { prompt: "x" } })).rejects.toMatchObject({ response: { status: 404 } });
  });

  it("deployments.get, as replicate-python's deployment code starts, and the account the key belongs to", async () => {
    const replicate = client();
    const deployment = await replicate.deployments.get("stability-ai", "sdxl");
    const model = (await (await raw("/v1/models/stability-ai/sdxl")).json()) as { latest_version: { id: string } };
    expect(deployment).toMatchObject({ owner: "stability-ai", name: "sdxl", current_release: { number: 1, model: "stability-ai/sdxl", version: model.latest_version.id, configuration: { hardware: expect.any(String), min_instances: expect.any(Number), max_instances: expect.any(Number) } } });
    await expect(replicate.deployments.get("nobody", "nothing")).rejects.toMatchObject({ response: { status: 404 } });
    const list = (await (await raw("/v1/deployments")).json()) as { results: { owner: string; name: string }[] };
    expect(list.results.map((d) => `${d.owner}/${d.name}`)).toEqual(expect.arrayContaining(["stability-ai/sdxl", "black-forest-labs/flux-schnell"]));
    expect(list.results).toHaveLength(5);
    expect(await replicate.accounts.current()).toEqual({ type: "organization", username: "rep", name: "rep", github_url: null });
    const anonymous = await fetch(`${gw.url}/v1/account`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("content-type")).toContain("application/problem+json");
  });

  it("cancel: a running prediction ends canceled; canceling it again answers it unchanged", async () => {
    const replicate = client();
    const created = await replicate.predictions.create({ model: "acme/never-ends", input: { prompt: "forever", width: 64, height: 64 } });
    const canceled = await replicate.predictions.cancel(created.id);
    expect(canceled).toMatchObject({ id: created.id, status: "canceled", error: null, output: null });
    const again = await replicate.predictions.cancel(created.id);
    expect(again).toMatchObject({ status: "canceled", completed_at: canceled.completed_at });
    expect((await replicate.predictions.get(created.id)).status).toBe("canceled");
  });

  it("list pages newest first through `next` (paginate); jobs of other APIs stay at /v1/jobs", async () => {
    const replicate = client();
    const made: string[] = [];
    for (let i = 0; i < 22; i += 1) {
      made.push((await replicate.predictions.create({ model: "stability-ai/sdxl", input: { prompt: `page ${i}`, width: 64, height: 64 } })).id);
    }
    const v1 = (await (await api(gw.url, KEY).post("/v1/jobs", { type: "txt2img", prompt: "canonical", width: 64, height: 64 })).json()) as JobView;
    const pages: Prediction[][] = [];
    for await (const page of replicate.paginate(() => replicate.predictions.list())) pages.push(page);
    expect(pages.length).toBeGreaterThan(1);
    const ids = pages.flat().map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    // Newest first: the last one made leads, and every one made is there in reverse order.
    expect(ids.filter((id) => made.includes(id))).toEqual([...made].reverse());
    expect(ids).not.toContain(v1.id);
    const created = pages.flat().map((p) => Date.parse(p.created_at));
    expect(created).toEqual([...created].sort((a, b) => b - a));
  });
});

describe("what the Python client sends and reads", () => {
  it("Token auth and Prefer: wait: the finished prediction in the first answer, typed as pydantic checks it", async () => {
    const res = await raw("/v1/models/stability-ai/sdxl/predictions", { method: "POST", auth: `Token ${KEY}`, headers: { prefer: "wait" }, body: JSON.stringify({ input: { prompt: "a dune", width: 64, height: 64, seed: 3 } }) });
    expect(res.status).toBe(201);
    const p = (await res.json()) as Record<string, unknown> & { urls: Record<string, unknown>; metrics: Record<string, unknown> };
    expect(p).toMatchObject({ status: "succeeded", model: "stability-ai/sdxl", version: expect.stringMatching(/^[0-9a-f]{64}$/), error: null, data_removed: false, input: { prompt: "a dune", width: 64, height: 64, seed: 3 } });
    for (const value of Object.values(p.urls)) expect(typeof value).toBe("string");
    expect(p.metrics).toMatchObject({ predict_time: expect.any(Number), total_time: expect.any(Number) });
    // The version it reports is the model's latest version.
    const model = (await (await raw("/v1/models/stability-ai/sdxl", { auth: `Token ${KEY}` })).json()) as Record<string, unknown> & { latest_version: { id: string } };
    expect(model).toMatchObject({ owner: "stability-ai", name: "sdxl", url: expect.any(String), visibility: expect.any(String), run_count: expect.any(Number) });
    expect(model.latest_version.id).toBe(p.version);
  });

  it("Prefer: wait=n answers `starting` when the prediction has not ended by then", async () => {
    const res = await raw("/v1/models/acme/never-ends/predictions", { method: "POST", headers: { prefer: "wait=1" }, body: JSON.stringify({ input: { prompt: "slow", width: 64, height: 64 } }) });
    expect(res.status).toBe(201);
    const p = (await res.json()) as Prediction;
    expect(p.status).toBe("starting");
    expect((await raw(`/v1/predictions/${p.id}/cancel`, { method: "POST" })).status).toBe(200);
  });

  it("a version with openapi_schema and cog_version", async () => {
    const res = await raw(`/v1/models/black-forest-labs/flux-schnell/versions/${FLUX_VERSION}`, { auth: `Token ${KEY}` });
    expect(res.status).toBe(200);
    const v = (await res.json()) as { id: string; cog_version: string; created_at: string; openapi_schema: { components: { schemas: { Input: { properties: Record<string, unknown> }; Output: unknown } } } };
    expect(v).toMatchObject({ id: FLUX_VERSION, cog_version: expect.any(String), created_at: expect.any(String) });
    expect(Object.keys(v.openapi_schema.components.schemas.Input.properties)).toEqual(expect.arrayContaining(["prompt", "image", "num_outputs", "aspect_ratio"]));
    expect((await raw("/v1/models/black-forest-labs/flux-schnell/versions/deadbeef")).status).toBe(404);
  });

  it("run(\"owner/name:version\") of a version listed on its own: created by the bare version, then the version read under the name the user wrote", async () => {
    const res = await raw("/v1/predictions", { method: "POST", auth: `Token ${KEY}`, headers: { prefer: "wait" }, body: JSON.stringify({ version: PINNED_VERSION, input: { prompt: "a pin", width: 64, height: 64 } }) });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ status: "succeeded", version: PINNED_VERSION });
    const version = await raw(`/v1/models/someone/sdxl-pinned/versions/${PINNED_VERSION}`, { auth: `Token ${KEY}` });
    expect(version.status).toBe(200);
    expect(await version.json()).toMatchObject({ id: PINNED_VERSION, cog_version: expect.any(String), openapi_schema: expect.any(Object) });
    // The same pair in `version` is that model's prediction.
    const named = await raw("/v1/predictions", { method: "POST", body: JSON.stringify({ version: `someone/sdxl-pinned:${PINNED_VERSION}`, input: { prompt: "a pin", width: 64, height: 64 } }) });
    expect(named.status).toBe(201);
    expect(await named.json()).toMatchObject({ model: "someone/sdxl-pinned", version: PINNED_VERSION });
    // A listed model's name does not take another entry's version.
    expect((await raw(`/v1/models/stability-ai/sdxl/versions/${PINNED_VERSION}`)).status).toBe(404);
  });

  it("the routes are in the gateway's OpenAPI document", async () => {
    const doc = (await (await fetch(`${gw.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/predictions", "/v1/predictions/{id}", "/v1/models/{owner}/{name}/predictions", "/v1/files"]));
  });

  it("no key is a 401 problem", async () => {
    const res = await fetch(`${gw.url}/v1/predictions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ version: FLUX_VERSION, input: {} }) });
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(await res.json()).toMatchObject({ status: 401, title: expect.any(String), detail: expect.any(String) });
  });
});

describe("workflow_json", () => {
  const graph = (ckpt: string) => ({
    "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: ckpt } },
    "6": { class_type: "CLIPTextEncode", inputs: { text: "a castle", clip: ["4", 1] } },
    "9": { class_type: "SaveImage", inputs: { images: ["6", 0], filename_prefix: "easel" } },
  });

  it("a ComfyUI graph, as JSON text or as an object, makes a workflow job; a graph no backend can run, or a model that takes none, is a 422", async () => {
    for (const workflow_json of [JSON.stringify(graph("sd_xl_base_1.0.safetensors")), graph("sd_xl_base_1.0")]) {
      const res = await raw("/v1/models/acme/any-comfyui-workflow/predictions", { method: "POST", body: JSON.stringify({ input: { workflow_json } }) });
      expect(res.status).toBe(201);
      const p = (await res.json()) as Prediction;
      expect(await canonical(p.id)).toMatchObject({ type: "workflow" });
      await raw(`/v1/predictions/${p.id}/cancel`, { method: "POST" });
    }
    const unknown = await raw("/v1/models/acme/any-comfyui-workflow/predictions", { method: "POST", body: JSON.stringify({ input: { workflow_json: graph("missing-model") } }) });
    expect(unknown.status).toBe(422);
    expect(((await unknown.json()) as { detail: string }).detail).toContain("input.workflow_json.4.inputs.ckpt_name");
    const refused = await raw("/v1/models/black-forest-labs/flux-schnell/predictions", { method: "POST", body: JSON.stringify({ input: { workflow_json: graph("sd_xl_base_1.0") } }) });
    expect(refused.status).toBe(422);
    expect(((await refused.json()) as { detail: string }).detail).toContain("input.workflow_json");
    const broken = await raw("/v1/models/acme/any-comfyui-workflow/predictions", { method: "POST", body: JSON.stringify({ input: { workflow_json: "{not json" } }) });
    expect(broken.status).toBe(422);
    expect(((await broken.json()) as { detail: string }).detail).toContain("input.workflow_json");
  });
});

describe("limits", () => {
  it("a tenant over its rate gets a 429 problem with Retry-After", async () => {
    const send = () => raw("/v1/models/stability-ai/sdxl/predictions", { method: "POST", auth: `Bearer ${LIMITED}`, body: JSON.stringify({ input: { prompt: "x", width: 64, height: 64 } }) });
    expect((await send()).status).toBe(201);
    const res = await send();
    expect(res.status).toBe(429);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await res.json()).toMatchObject({ status: 429, detail: expect.stringContaining("throttled") });
  });
});

describe("tenants", () => {
  it("another tenant's prediction and file do not exist for it", async () => {
    const mine = await client().predictions.create({ model: "stability-ai/sdxl", input: { prompt: "mine", width: 64, height: 64 } });
    await expect(client(OTHER).predictions.get(mine.id)).rejects.toMatchObject({ response: { status: 404 } });
    await expect(client(OTHER).predictions.cancel(mine.id)).rejects.toMatchObject({ response: { status: 404 } });
    expect((await client(OTHER).predictions.list()).results).toEqual([]);

    const file = await client().files.create(Buffer.from(tinyPng()));
    expect(file).toMatchObject({ content_type: "image/png", size: tinyPng().byteLength, urls: { get: `${publicBase}/v1/files/${file.id}` } });
    const res = await raw("/v1/models/stability-ai/sdxl/predictions", { method: "POST", auth: `Bearer ${OTHER}`, body: JSON.stringify({ input: { prompt: "theirs", image: file.urls.get } }) });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { detail: string }).detail).toContain("input.image");
    expect((await raw(`/v1/files/${file.id}`, { auth: `Bearer ${OTHER}` })).status).toBe(404);
    expect((await raw(`/v1/files/${file.id}/download`, { auth: `Bearer ${OTHER}` })).status).toBe(404);
    const download = await raw(`/v1/files/${file.id}/download`);
    expect(download.headers.get("content-type")).toBe("image/png");
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(tinyPng());
  });
});

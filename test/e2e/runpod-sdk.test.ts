/**
 * RunPod's own JavaScript SDK (`runpod-sdk` 1.1.2, unmodified) against a real gateway, pointed at
 * it as RunPod's docs say: `baseUrl: "<gateway>/v2"`, an endpoint id, the API key. Only the host changes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import runpodSdk from "runpod-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { api, pngSize, waitForJob } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";

const KEY = "sk_runpod_user";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let stuck: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let dir: string;

type Status = { id: string; status: string; output?: { images?: string[]; image?: string; info?: string }; error?: string; delayTime?: number; executionTime?: number };

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 30 }) } });
  // A backend that takes every job and never answers: jobs there stay running, the next ones queued.
  stuck = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ hang: true }) } });
  receiver = await startReceiver({ secrets: [SECRET] });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-runpod-sdk-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ rp: { api_keys: [KEY], webhook_secrets: [SECRET] }, other: { api_keys: ["sk_other"], webhook_secrets: [] } }),
      BACKENDS: JSON.stringify([
        { name: "sim", kind: "a1111", url: sim.url },
        { name: "stuck", kind: "a1111", url: stuck.url, max_concurrency: 1, types: ["txt2img"], models: ["nothing-listed"] },
      ]),
      // abc123 is an ordinary endpoint id; "slowpoke" is deployed on the stuck backend, "one-gpu" on sim alone; "t2i-only" serves txt2img only.
      ENDPOINTS: JSON.stringify({ slowpoke: { backend: "stuck" }, "one-gpu": { backend: "sim" }, "t2i-only": { types: ["txt2img"], model: "chilloutmix-Ni" } }),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await stuck?.stop();
  await receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sdk = () => runpodSdk(KEY, { baseUrl: `${gw.url}/v2` });
const endpoint = (id: string) => {
  const ep = sdk().endpoint(id);
  if (!ep) throw new Error("no endpoint");
  return ep;
};
const txt2img = (extra: Record<string, unknown> = {}) => ({ input: { api_name: "txt2img", prompt: "a lighthouse", width: 64, height: 64, seed: 7, ...extra } });
const pngOf = (b64: string | undefined) => pngSize(new Uint8Array(Buffer.from(b64 ?? "", "base64")));
/**
 * runpod-python's `Job.stream()` (runpod/endpoint/runner.py): reads `stream/{id}`, each read given
 * up after 10 s, yields each chunk's output, and stops at a final status with an empty stream.
 * It sleeps 1 s between reads; here 100 ms, and at most 60 reads.
 */
async function pythonStream(endpointId: string, id: string): Promise<unknown[]> {
  const outputs: unknown[] = [];
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(`${gw.url}/v2/${endpointId}/stream/${id}`, { headers: { authorization: `Bearer ${KEY}` }, signal: AbortSignal.timeout(10_000) });
    const partial = (await res.json()) as { status: string; stream: { output: unknown }[] };
    // Its FINAL_STATES (runpod/endpoint/helpers.py).
    if (!["COMPLETED", "FAILED", "TIMED_OUT"].includes(partial.status) || partial.stream.length > 0) outputs.push(...partial.stream.map((chunk) => chunk.output));
    else return outputs;
  }
  throw new Error(`the stream of ${id} did not end within 60 reads`);
}
const raw = (path: string, init: RequestInit = {}) => fetch(gw.url + path, { ...init, headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...init.headers } });

describe("runpod-sdk against /v2/{endpoint_id}", () => {
  it("runSync: the A1111 worker's answer as output, with delayTime and executionTime", async () => {
    const res = (await endpoint("abc123").runSync(txt2img())) as unknown as Status & { completed: boolean; succeeded: boolean };
    expect(res).toMatchObject({ status: "COMPLETED", completed: true, succeeded: true });
    expect(pngOf(res.output?.images?.[0])).toEqual({ width: 64, height: 64 });
    expect(JSON.parse(res.output?.info ?? "{}")).toMatchObject({ seed: 7 });
    expect(res.delayTime).toEqual(expect.any(Number));
    expect(res.executionTime).toEqual(expect.any(Number));
    // The job behind it is a canonical job too.
    const job = await (await api(gw.url, KEY).get(`/v1/jobs/${res.id}`)).json();
    expect(job).toMatchObject({ id: res.id, status: "succeeded", type: "txt2img" });
  });

  it("run, then status until COMPLETED; statusSync and stream on the same job", async () => {
    const ep = endpoint("abc123");
    const queued = await ep.run(txt2img({ seed: 8 }));
    expect(queued).toMatchObject({ id: expect.stringMatching(/^run_/), status: "IN_QUEUE" });
    const synced = (await ep.statusSync(queued.id)) as Status;
    expect(synced.status).toBe("COMPLETED");
    const status = (await ep.status(queued.id)) as Status;
    expect(status).toMatchObject({ id: queued.id, status: "COMPLETED" });
    expect(status.output?.images).toEqual(synced.output?.images);
    const streamed: { output: Status["output"] }[] = [];
    for await (const item of ep.stream(queued.id)) streamed.push(item as { output: Status["output"] });
    expect(streamed).toHaveLength(1);
    expect(streamed[0]?.output?.images).toEqual(synced.output?.images);
  });

  it("stream as runpod-python's Job.stream reads it: the output once, then the ended job's empty stream ends the loop", async () => {
    const ep = endpoint("abc123");
    const queued = await ep.run(txt2img({ seed: 12 }));
    const outputs = await pythonStream("abc123", queued.id);
    expect(outputs).toHaveLength(1);
    expect(pngOf((outputs[0] as Status["output"])?.images?.[0])).toEqual({ width: 64, height: 64 });
    // runpod-sdk reads it again: the job ended, nothing new.
    const again: unknown[] = [];
    for await (const item of ep.stream(queued.id)) again.push(item);
    expect(again).toEqual([]);
    // The output is still the job's: /status answers it whole.
    expect(((await ep.status(queued.id)) as Status).output?.images).toHaveLength(1);
  });

  it("getModels through runSync: the models across backends, as the worker lists them", async () => {
    const res = (await endpoint("abc123").runSync({ input: { api_name: "getModels" } })) as unknown as { status: string; output: { title: string }[] };
    expect(res.status).toBe("COMPLETED");
    expect(res.output.map((m) => m.title)).toContain("v1-5-pruned-emaonly.safetensors [6ce0161689]");
  });

  it("an instant answer (getOptions through run) answers status, stream and cancel as a completed job, at its own endpoint only", async () => {
    const ep = endpoint("abc123");
    const run = (await ep.run({ input: { api_name: "getOptions" } })) as unknown as Status & { output: { sd_model_checkpoint: string } };
    expect(run).toMatchObject({ id: expect.stringMatching(/^sync-/), status: "COMPLETED" });
    expect(await ep.status(run.id)).toMatchObject({ id: run.id, status: "COMPLETED", output: run.output });
    const streamed: unknown[] = [];
    for await (const item of ep.stream(run.id)) streamed.push(item);
    expect(streamed).toEqual([{ output: run.output }]);
    // Read once, as a job's output: runpod-python's loop then ends on the empty stream.
    expect(await pythonStream("abc123", run.id)).toEqual([]);
    expect(await ep.cancel(run.id)).toEqual({ id: run.id, status: "COMPLETED", delayTime: 0, executionTime: 0 });
    for (const path of [`/v2/zzz/status/${run.id}`, `/v2/zzz/stream/${run.id}`, `/runpod/status/${run.id}`]) expect((await raw(path)).status, path).toBe(404);
  });

  it("extra-single-image: the worker's upscaler, {html_info, image} as output", async () => {
    const image = Buffer.from(encodePng(24, 16, () => [10, 20, 30])).toString("base64");
    const res = (await endpoint("abc123").runSync({ input: { api_name: "extra-single-image", image, upscaling_resize: 2, upscaler_1: "R-ESRGAN 4x+" } })) as unknown as Status & { output: { html_info: string; image: string } };
    expect(res.status).toBe("COMPLETED");
    expect(pngOf(res.output.image)).toEqual({ width: 48, height: 32 });
    expect(res.output.html_info).toContain("R-ESRGAN 4x+");
  });

  it("cancel, purgeQueue and health on an endpoint whose backend is busy", async () => {
    const ep = endpoint("slowpoke");
    const first = await ep.run(txt2img({ model: undefined }));
    const second = await ep.run(txt2img({ seed: 9 }));
    // The first takes the stuck backend's one slot; the second waits in line.
    for (let i = 0; i < 100 && ((await ep.status(first.id)) as Status).status !== "IN_PROGRESS"; i++) await new Promise((r) => setTimeout(r, 50));
    expect(((await ep.status(first.id)) as Status).status).toBe("IN_PROGRESS");
    expect(((await ep.status(second.id)) as Status).status).toBe("IN_QUEUE");

    const health = await ep.health();
    expect(health.jobs).toMatchObject({ inProgress: 1, inQueue: 1, completed: 0, failed: 0 });
    expect(health.workers).toMatchObject({ running: 1, idle: 0 });

    expect(await ep.purgeQueue()).toEqual({ removed: 1, status: "completed" });
    expect(((await ep.status(second.id)) as Status).status).toBe("CANCELLED");
    expect(((await ep.status(first.id)) as Status).status).toBe("IN_PROGRESS");

    const canceled = await ep.cancel(first.id);
    expect(canceled).toMatchObject({ id: first.id, status: "CANCELLED" });
    expect((await ep.health()).jobs).toMatchObject({ inProgress: 0, inQueue: 0 });
    // Another endpoint's health counts its own jobs only.
    expect((await endpoint("abc123").health()).jobs.completed).toBeGreaterThanOrEqual(3);
  });
});

describe("RunPod routes beyond the SDK", () => {
  it("counts policy.executionTimeout from the start, not in the queue: TIMED_OUT once it ran that long, and /retry requeues it under its id", { timeout: 60_000 }, async () => {
    const post = async (path: string, body?: unknown) => (await (await raw(path, { method: "POST", body: JSON.stringify(body) })).json()) as Status;
    // sim's one slot busy for 8 s a job: the second waits in line longer than its executionTimeout, then runs longer.
    await sim.config({ msPerImage: 8_000 });
    let id: string;
    try {
      const first = await post("/v2/one-gpu/run", txt2img());
      for (let i = 0; i < 100 && ((await endpoint("one-gpu").status(first.id)) as Status).status !== "IN_PROGRESS"; i++) await new Promise((r) => setTimeout(r, 50));
      id = (await post("/v2/one-gpu/run", { ...txt2img({ seed: 3 }), policy: { executionTimeout: 5_000 } })).id;
      await new Promise((r) => setTimeout(r, 6_000));
      expect(await endpoint("one-gpu").status(id)).toMatchObject({ status: "IN_QUEUE" });
      const ended = await post(`/v2/one-gpu/status-sync/${id}?wait=30000`);
      expect(ended).toMatchObject({ id, status: "TIMED_OUT" });
      expect(ended.executionTime).toBeGreaterThanOrEqual(4_900);
      const job = (await (await api(gw.url, KEY).get(`/v1/jobs/${id}`)).json()) as Record<string, unknown>;
      expect(job).toMatchObject({ started_at: expect.any(String), error: { message: "the job did not finish within 5 s of starting to run" }, parameters: { timeout_s: 1800, run_timeout_s: 5 } });
    } finally {
      await sim.config({ msPerImage: 30 });
    }
    const retried = await raw(`/v2/one-gpu/retry/${id}`, { method: "POST" });
    expect(retried.status).toBe(200);
    expect(await retried.json()).toEqual({ id, status: "IN_QUEUE" });
    // Its deadlines set afresh (the whole life from the retry, the run limit from its next start): it completes.
    expect(await post(`/v2/one-gpu/status-sync/${id}?wait=30000`)).toMatchObject({ id, status: "COMPLETED" });
    expect((await endpoint("one-gpu").health()).jobs.retried).toBe(1);
    // Only a failed or timed-out job is retried.
    const again = await raw(`/v2/one-gpu/retry/${id}`, { method: "POST" });
    expect(again.status).toBe(409);
    expect(await again.json()).toEqual({ error: expect.stringContaining("succeeded") });
  });

  it("takes every policy RunPod takes, clamped to what the gateway keeps: ttl the job's whole life, executionTimeout its run", async () => {
    const cases: [Record<string, unknown> | null, { timeout_s: number; run_timeout_s: number | null }][] = [
      // RunPod's docs' long-running example: 48 h of running within 72 h.
      [{ executionTimeout: 172_800_000, ttl: 259_200_000 }, { timeout_s: 3600, run_timeout_s: 3600 }],
      [{ executionTimeout: 5_000 }, { timeout_s: 1800, run_timeout_s: 5 }],
      [{ ttl: 10_000 }, { timeout_s: 10, run_timeout_s: null }],
      [null, { timeout_s: 1800, run_timeout_s: null }],
    ];
    for (const [policy, limits] of cases) {
      const res = await raw("/v2/abc123/run", { method: "POST", body: JSON.stringify({ ...txt2img(), policy, webhook: null }) });
      expect(res.status, JSON.stringify(policy)).toBe(200);
      const { id } = (await res.json()) as Status;
      const job = (await (await api(gw.url, KEY).get(`/v1/jobs/${id}`)).json()) as { parameters: Record<string, unknown> };
      expect(job.parameters, JSON.stringify(policy)).toMatchObject({ ...limits, webhook: null });
    }
  });

  it("runsync answers the job still in progress once ?wait= runs out, with its id", async () => {
    const started = Date.now();
    const res = (await (await raw("/v2/slowpoke/runsync?wait=1000", { method: "POST", body: JSON.stringify(txt2img()) })).json()) as Status;
    expect(Date.now() - started).toBeLessThan(8000);
    expect(res).toMatchObject({ id: expect.stringMatching(/^run_/), status: expect.stringMatching(/^IN_(QUEUE|PROGRESS)$/) });
    await raw(`/v2/slowpoke/cancel/${res.id}`, { method: "POST" });
  });

  it("a stream read of a job still running answers within runpod-python's 10 s read timeout, its stream empty", async () => {
    const run = (await (await raw("/v2/slowpoke/run", { method: "POST", body: JSON.stringify(txt2img()) })).json()) as Status;
    const res = await raw(`/v2/slowpoke/stream/${run.id}`, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: expect.stringMatching(/^IN_(QUEUE|PROGRESS)$/), stream: [] });
    await endpoint("slowpoke").cancel(run.id);
    const ended = await raw(`/v2/slowpoke/stream/${run.id}`);
    expect(await ended.json()).toEqual({ status: "CANCELLED", stream: [] });
  });

  it("posts RunPod's webhook body, signed: the status object with the request's input as sent (its images left out) and webhook", async () => {
    const url = `${receiver.url}/rp`;
    const run = (await (await raw("/v2/abc123/run", { method: "POST", body: JSON.stringify({ ...txt2img({ seed: 11, user_ref: "order-42", steps: "4" }), webhook: url }) })).json()) as Status;
    const hook = await receiver.waitFor((d) => d.path === "/rp" && (d.json as Status).id === run.id, 20_000);
    expect(hook.verified).toEqual([true]);
    expect(hook.json).toMatchObject({ id: run.id, status: "COMPLETED", output: { images: [expect.any(String)] }, webhook: url });
    // The input as the client wrote it: its own fields to match the call to its order, "4" still a string.
    expect((hook.json as { input: unknown }).input).toEqual({ api_name: "txt2img", prompt: "a lighthouse", width: 64, height: 64, seed: 11, user_ref: "order-42", steps: "4" });
    // /status stays RunPod's status object.
    expect(Object.keys((await endpoint("abc123").status(run.id)) as object)).not.toContain("input");

    const image = Buffer.from(encodePng(64, 64, () => [200, 100, 50])).toString("base64");
    const i2i = (await (await raw("/v2/abc123/run", { method: "POST", body: JSON.stringify({ input: { api_name: "img2img", prompt: "p", init_images: [image], mask: image, order: 7 }, webhook: url }) })).json()) as Status;
    const hook2 = await receiver.waitFor((d) => d.path === "/rp" && (d.json as Status).id === i2i.id, 20_000);
    expect((hook2.json as { input: unknown }).input).toEqual({ api_name: "img2img", prompt: "p", order: 7 });
  });

  it("follows ENDPOINTS: a types list refuses other calls; the endpoint's model is the default", async () => {
    const image = Buffer.from(encodePng(8, 8, () => [1, 1, 1])).toString("base64");
    const refused = await raw("/v2/t2i-only/run", { method: "POST", body: JSON.stringify({ input: { api_name: "img2img", prompt: "x", init_images: [image] } }) });
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({ error: expect.stringContaining("input.api_name") });
    const run = (await (await raw("/v2/t2i-only/runsync", { method: "POST", body: JSON.stringify(txt2img()) })).json()) as Status;
    expect(run.status).toBe("COMPLETED");
    expect(JSON.parse(run.output?.info ?? "{}")).toMatchObject({ sd_model_name: "chilloutmix-Ni" });
  });

  it("keeps the /runpod alias, and a job of one endpoint is not found at another", async () => {
    const run = (await (await raw("/runpod/runsync", { method: "POST", body: JSON.stringify(txt2img()) })).json()) as Status;
    expect(run.status).toBe("COMPLETED");
    expect((await raw(`/runpod/status/${run.id}`)).status).toBe(200);
    expect((await raw(`/v2/abc123/status/${run.id}`)).status).toBe(404);
  });

  it("answers every route's bad request in RunPod's {error} shape with a 4xx", async () => {
    const id = (await waitForJob(api(gw.url, KEY), ((await (await raw("/v2/abc123/run", { method: "POST", body: JSON.stringify(txt2img()) })).json()) as Status).id)).id;
    const cases: [string, RequestInit, number][] = [
      ["/v2/abc123/run", { method: "POST", body: JSON.stringify({ input: { api_name: "txt2img", prompt: "x", width: 4096 } }) }, 422],
      ["/v2/abc123/runsync", { method: "POST", body: "{not json" }, 400],
      ["/v2/abc123/run", { method: "POST", body: JSON.stringify({ ...txt2img(), policy: { executionTimeout: 1000 } }) }, 422],
      ["/v2/abc123/status/run_nope", {}, 404],
      ["/v2/abc123/status-sync/run_nope", {}, 404],
      ["/v2/abc123/stream/run_nope", {}, 404],
      ["/v2/abc123/cancel/run_nope", { method: "POST" }, 404],
      [`/v2/abc123/retry/${id}`, { method: "POST" }, 409],
      ["/v2/abc123/runsync?wait=soon", { method: "POST", body: JSON.stringify(txt2img()) }, 422],
    ];
    for (const [path, init, status] of cases) {
      const res = await raw(path, init);
      expect(res.status, path).toBe(status);
      expect(await res.json(), path).toMatchObject({ error: expect.any(String) });
    }
    for (const path of ["/v2/abc123/health", "/v2/abc123/purge-queue"]) {
      const res = await fetch(gw.url + path, { method: path.endsWith("health") ? "GET" : "POST", headers: { authorization: "Bearer wrong" } });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: expect.any(String) });
    }
    // Another tenant sees none of it.
    expect((await fetch(`${gw.url}/v2/abc123/status/${id}`, { headers: { authorization: "sk_other" } })).status).toBe(404);
  });
});

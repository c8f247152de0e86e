/**
 * Per-tenant `rate_limit` and `max_active_jobs` through a real gateway: 429s in each API's own
 * shape with Retry-After and RateLimit-* headers, nothing half-created, nothing over the limit run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, waitForJob, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
// An hour-long window: a burst of a few requests does not straddle its edge in practice.
const RATE = { requests: 3, period_s: 3600 };
const TENANTS = JSON.stringify({
  rl_v1: { api_keys: ["sk_rl_v1"], rate_limit: RATE },
  rl_ml: { api_keys: ["sk_rl_ml"], rate_limit: RATE },
  rl_rp: { api_keys: ["sk_rl_rp"], rate_limit: RATE },
  rl_mix: { api_keys: ["sk_rl_mix"], rate_limit: RATE },
  busy: { api_keys: ["sk_busy"], max_active_jobs: 2 },
  free: { api_keys: ["sk_free"] },
  chain: { api_keys: ["sk_chain"], webhook_secrets: [SECRET], max_active_jobs: 1 },
  retrier: { api_keys: ["sk_retrier"], max_active_jobs: 1, rate_limit: RATE },
});
const JOB = { type: "txt2img", prompt: "limit me", width: 64, height: 64, steps: 1 };

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  // A receiver that takes its time to answer (it never does): what it does meanwhile is the point.
  receiver = await startReceiver({ secrets: [SECRET], answer: () => "hang" });
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 5 }) } });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-limits-"));
  gw = await startGateway({
    persistDir: dir,
    vars: { TENANTS, BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url, max_concurrency: 8 }]), ALLOW_PRIVATE_URLS: "true", URL_SIGNING_SECRET: "e2e" },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function expectLimitHeaders(res: Response, limit: number) {
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
  expect(res.headers.get("ratelimit-limit")).toBe(String(limit));
  expect(res.headers.get("ratelimit-remaining")).toBe("0");
  expect(Number(res.headers.get("ratelimit-reset"))).toBeGreaterThan(0);
}

const generations = async () => (await sim.stats()).byKind.a1111.generations;

async function burst(send: () => Promise<Response>, n: number): Promise<Response[]> {
  const out: Response[] = [];
  for (let i = 0; i < n; i++) out.push(await send());
  return out;
}

describe("rate_limit", () => {
  it("answers a /v1 burst over the limit with 429 rate_limited and the headers, and runs only the accepted jobs", async () => {
    const client = api(gw.url, "sk_rl_v1");
    const before = await generations();
    const answers = await burst(() => client.post("/v1/jobs", { ...JOB, track_id: "burst" }), 6);
    expect(answers.map((r) => r.status)).toEqual([202, 202, 202, 429, 429, 429]);
    for (const r of answers.slice(3)) {
      expectLimitHeaders(r, 3);
      expect(await r.json()).toMatchObject({ error: { code: "rate_limited", message: expect.any(String) } });
    }
    const accepted = (await Promise.all(answers.slice(0, 3).map((r) => r.json()))) as JobView[];
    for (const j of accepted) expect((await waitForJob(client, j.id)).status).toBe("succeeded");
    await new Promise((r) => setTimeout(r, 500));
    expect((await generations()) - before).toBe(3);
    // Nothing half-created: the tenant has exactly the accepted jobs. Reads are not limited.
    const listed = (await (await client.get("/v1/jobs?track_id=burst")).json()) as { data: JobView[] };
    expect(listed.data.map((j) => j.id).sort()).toEqual(accepted.map((j) => j.id).sort());
  });

  it("answers in ModelsLab's shape on its routes", async () => {
    const send = () =>
      fetch(`${gw.url}/api/v3/text2img`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: "sk_rl_ml", prompt: "x", width: "64", height: "64", samples: "1" }) });
    const answers = await burst(send, 4);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expectLimitHeaders(answers[3] as Response, 3);
    expect(await answers[3]?.json()).toMatchObject({ status: "error", message: expect.stringContaining("rate limit") });
  });

  it("answers in RunPod's shape on /run and /runsync, which count together", async () => {
    const send = (path: string) =>
      fetch(`${gw.url}/runpod/${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: "sk_rl_rp" }, body: JSON.stringify({ input: { api_name: "txt2img", prompt: "x", width: 64, height: 64, steps: 1 } }) });
    const answers = [await send("run"), await send("runsync"), await send("run"), await send("runsync"), await send("run")];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
    for (const r of answers.slice(3)) {
      expectLimitHeaders(r, 3);
      const body = (await r.json()) as Record<string, unknown>;
      expect(typeof body.error).toBe("string");
    }
  });

  it("counts refused requests too, whatever refused them and on whichever API: the next valid one is over", async () => {
    const post = (path: string, headers: Record<string, string>, body: unknown) => fetch(`${gw.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
    const before = await generations();
    const refused = [
      // The route's schema refuses each of these before intake sees it.
      await post("/v1/jobs", { authorization: "Bearer sk_rl_mix" }, { ...JOB, steps: "abc" }),
      await post("/sdapi/v1/txt2img", { authorization: "Bearer sk_rl_mix" }, { prompt: "x", steps: "many" }),
      await post("/runpod/run", { authorization: "sk_rl_mix" }, { input: { api_name: "txt2img", prompt: "x", width: "wide" } }),
    ];
    expect(refused.map((r) => r.status)).toEqual([422, 422, 422]);
    const over = await post("/v1/jobs", { authorization: "Bearer sk_rl_mix" }, JOB);
    expect(over.status).toBe(429);
    expectLimitHeaders(over, 3);
    // Over the limit, a bad body is a 429 too: the count comes before the body is read.
    expect((await post("/sdapi/v1/txt2img", { authorization: "Bearer sk_rl_mix" }, { prompt: "x", steps: "many" })).status).toBe(429);
    await new Promise((r) => setTimeout(r, 300));
    expect((await generations()) - before).toBe(0);
  });

  it("leaves other tenants alone", async () => {
    const res = await api(gw.url, "sk_free").post("/v1/jobs", JOB);
    expect(res.status).toBe(202);
  });
});

describe("max_active_jobs", () => {
  it("holds while jobs run and frees as they end", async () => {
    const client = api(gw.url, "sk_busy");
    await sim.config({ msPerImage: 1500 });
    try {
      const first = (await (await client.post("/v1/jobs", JOB)).json()) as JobView;
      const second = (await (await client.post("/v1/jobs", JOB)).json()) as JobView;
      const key = { "idempotency-key": `over-${Date.now()}` };
      const over = await client.post("/v1/jobs", { ...JOB, track_id: "over" }, key);
      expect(over.status).toBe(429);
      expectLimitHeaders(over, 2);
      expect(await over.json()).toMatchObject({ error: { code: "too_many_active_jobs" } });
      // Same limit on a dialect route, in its shape.
      const viaModelsLab = await fetch(`${gw.url}/api/v3/text2img`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: "sk_busy", prompt: "x" }) });
      expect(viaModelsLab.status).toBe(429);
      expect(await viaModelsLab.json()).toMatchObject({ status: "error" });
      // Reads still work at the limit, and the refused job does not exist.
      const listed = (await (await client.get("/v1/jobs")).json()) as { data: JobView[] };
      expect(listed.data.map((j) => j.id).sort()).toEqual([first.id, second.id].sort());
      await waitForJob(client, first.id);
      // The refused request left its Idempotency-Key free: a changed body under it is a new job, not a 409.
      const after = await client.post("/v1/jobs", { ...JOB, track_id: "after" }, key);
      expect(after.status).toBe(202);
      await waitForJob(client, second.id);
      await waitForJob(client, ((await after.json()) as JobView).id);
    } finally {
      await sim.config({ msPerImage: 5 });
    }
  });

  it("counts a job as ended before its webhook arrives: a receiver may submit the next job from its handler", async () => {
    const client = api(gw.url, "sk_chain");
    const first = (await (await client.post("/v1/jobs", { ...JOB, webhook: `${receiver.url}/chain` })).json()) as JobView;
    const hook = await receiver.waitFor((d) => d.path === "/chain", 30_000);
    expect(hook.json).toMatchObject({ type: "job.succeeded", data: { id: first.id } });
    // The receiver has not answered, and will not: the job is over all the same.
    const next = await client.post("/v1/jobs", JOB);
    expect(next.status, await next.clone().text()).toBe(202);
    const listed = (await (await client.get("/v1/jobs?status=succeeded")).json()) as { data: JobView[] };
    expect(listed.data.map((j) => j.id)).toContain(first.id);
    await waitForJob(client, ((await next.json()) as JobView).id);
  });

  it("holds RunPod's /retry to both limits, as the new GPU run it is: over max_active_jobs, then over the rate, in RunPod's shape", async () => {
    const post = (path: string, body?: unknown) =>
      fetch(`${gw.url}/v2/retry-ep/${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: "sk_retrier" }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const status = async (id: string) => ((await (await fetch(`${gw.url}/v2/retry-ep/status/${id}`, { headers: { authorization: "sk_retrier" } })).json()) as { status: string }).status;
    const settled = async (id: string, want: string) => {
      for (let i = 0; i < 150 && (await status(id)) !== want; i++) await new Promise((r) => setTimeout(r, 200));
      return status(id);
    };
    const input = { input: { api_name: "txt2img", prompt: "x", width: 64, height: 64, steps: 1 } };
    await sim.config({ errorRate: 1 });
    const failed = (await (await post("run", input)).json()) as { id: string };
    expect(await settled(failed.id, "FAILED")).toBe("FAILED");
    await sim.config({ errorRate: 0, msPerImage: 3000 });
    try {
      const before = await generations();
      const running = (await (await post("run", input)).json()) as { id: string };
      const overActive = await post(`retry/${failed.id}`);
      expect(overActive.status).toBe(429);
      expectLimitHeaders(overActive, 1);
      expect(typeof ((await overActive.json()) as { error: unknown }).error).toBe("string");
      expect(await status(failed.id)).toBe("FAILED");
      expect(await settled(running.id, "COMPLETED")).toBe("COMPLETED");
      // Three requests counted (two runs and the refused retry): the fourth is over the rate.
      const overRate = await post(`retry/${failed.id}`);
      expect(overRate.status).toBe(429);
      expectLimitHeaders(overRate, 3);
      expect(await status(failed.id)).toBe("FAILED");
      // Only the second job ran: no retry reached the GPU.
      expect((await generations()) - before).toBe(1);
    } finally {
      await sim.config({ msPerImage: 5 });
    }
  });
});

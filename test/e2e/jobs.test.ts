/**
 * The canonical /v1 API end to end: a real `wrangler dev` gateway, the GPU simulator as a real
 * process, everything over HTTP as a client sees it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { startGateway, startSimulatorProcess } from "./support/processes";
import { api, pngSize, waitForJob, waitForStatus, type JobView } from "./support/client";

const TENANTS = JSON.stringify({
  acme: { api_keys: ["sk_acme"], webhook_secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] },
  globex: { api_keys: ["sk_globex"], webhook_secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] },
});

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
let acme: ReturnType<typeof api>;
let globex: ReturnType<typeof api>;

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-jobs-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS,
      BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url, max_concurrency: 4 }]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e-secret",
    },
  });
  acme = api(gw.url, "sk_acme");
  globex = api(gw.url, "sk_globex");
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("POST /v1/jobs", () => {
  it("runs a txt2img job to a real PNG of the asked size, one per sample, seeds counting up", async () => {
    const res = await acme.post("/v1/jobs", { type: "txt2img", prompt: "a cat wizard", width: 64, height: 96, samples: 2, seed: 42, track_id: "order-1" });
    expect(res.status).toBe(202);
    const queued = (await res.json()) as JobView;
    expect(queued).toMatchObject({ status: "queued", track_id: "order-1", seed: 42, output: [], error: null });
    expect(queued.id).toMatch(/^run_[a-z2-7]{39}$/);

    const done = await waitForJob(acme, queued.id);
    expect(done.status).toBe("succeeded");
    expect(done.backend).toBe("sim");
    expect(done.output.map((o) => o.seed)).toEqual([42, 43]);
    expect(done.started_at).not.toBeNull();
    expect(done.metrics.run_ms).toBeGreaterThanOrEqual(0);
    for (const out of done.output) {
      expect(out).toMatchObject({ content_type: "image/png", width: 64, height: 96 });
      // The link works without the API key.
      const img = await fetch(out.url);
      expect(img.status).toBe(200);
      expect(pngSize(new Uint8Array(await img.arrayBuffer()))).toEqual({ width: 64, height: 96 });
    }
  });

  it("runs img2img from a data URI and from raw base64, reporting the random seed it picked", async () => {
    const png = Buffer.from(encodePng(16, 16, () => [200, 30, 30]));
    for (const init_image of [`data:image/png;base64,${png.toString("base64")}`, png.toString("base64")]) {
      const res = await acme.post("/v1/jobs", { type: "img2img", prompt: "redder", init_image, strength: 0.5, width: 64, height: 64 });
      expect(res.status).toBe(202);
      const job = (await res.json()) as JobView;
      expect(Number.isInteger(job.seed)).toBe(true);
      const done = await waitForJob(acme, job.id);
      expect(done.status).toBe("succeeded");
      expect(done.output[0]?.seed).toBe(job.seed);
    }
  });

  it("refuses a tampered or expired output link", async () => {
    const job = await waitForJob(acme, ((await (await acme.post("/v1/jobs", { type: "txt2img", prompt: "x", width: 64, height: 64 })).json()) as JobView).id);
    const url = new URL(job.output[0]?.url ?? "");
    const tampered = new URL(url);
    tampered.searchParams.set("expires", String(Number(url.searchParams.get("expires")) + 1));
    expect((await fetch(tampered)).status).toBe(403);
    const expired = new URL(url);
    expired.searchParams.set("expires", "1000");
    expect((await fetch(expired)).status).toBe(403);
  });
});

describe("tenancy and idempotency", () => {
  it("answers 401 without a known key and 404 for another tenant's job", async () => {
    expect((await api(gw.url, "sk_wrong").get("/v1/jobs/run_aaaaaaaaaaaaaaaaaaaaaaaaaa")).status).toBe(401);
    const noKey = await fetch(`${gw.url}/v1/jobs`, { method: "POST", body: "{}" });
    expect(noKey.status).toBe(401);
    expect(((await noKey.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    const job = (await (await acme.post("/v1/jobs", { type: "txt2img", prompt: "mine", width: 64, height: 64 })).json()) as JobView;
    for (const res of [await globex.get(`/v1/jobs/${job.id}`), await globex.post(`/v1/jobs/${job.id}/cancel`), await globex.get(`/v1/jobs/${job.id}/events`)]) {
      expect(res.status).toBe(404);
      expect(JSON.stringify(await res.json())).not.toContain("mine");
    }
  });

  it("returns the first job for a repeated Idempotency-Key, 409 for another body, per tenant", async () => {
    const body = { type: "txt2img", prompt: "once", width: 64, height: 64, seed: 5 };
    const first = await acme.post("/v1/jobs", body, { "idempotency-key": "key-1" });
    expect(first.status).toBe(202);
    const id = ((await first.json()) as JobView).id;
    // Same JSON, other key order: still the same request.
    const again = await acme.post("/v1/jobs", { seed: 5, height: 64, width: 64, prompt: "once", type: "txt2img" }, { "idempotency-key": "key-1" });
    expect([200, 202]).toContain(again.status);
    expect(((await again.json()) as JobView).id).toBe(id);
    const other = await acme.post("/v1/jobs", { ...body, prompt: "twice" }, { "idempotency-key": "key-1" });
    expect(other.status).toBe(409);
    const otherTenant = await globex.post("/v1/jobs", body, { "idempotency-key": "key-1" });
    expect(otherTenant.status).toBe(202);
    expect(((await otherTenant.json()) as JobView).id).not.toBe(id);
    await waitForJob(acme, id);
    const stats = await sim.stats();
    expect(stats.requests["/sdapi/v1/txt2img"]).toBeGreaterThan(0);
  });
});

describe("events", () => {
  it("lists a job's events oldest first and streams them as Server-Sent Events until it ends", async () => {
    const job = (await (await acme.post("/v1/jobs", { type: "txt2img", prompt: "stream", width: 64, height: 64 })).json()) as JobView;
    const res = await fetch(`${gw.url}/v1/jobs/${job.id}/events`, { headers: { authorization: "Bearer sk_acme", accept: "text/event-stream" } });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    // The stream ends by itself when the job ends.
    const text = await Promise.race([res.text(), new Promise<string>((_, reject) => setTimeout(() => reject(new Error("stream did not end")), 30_000))]);
    const types = [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    expect(types[0]).toBe("job.queued");
    expect(types).toContain("job.started");
    expect(types.at(-1)).toBe("job.succeeded");
    const list = (await (await acme.get(`/v1/jobs/${job.id}/events`)).json()) as { data: { seq: number; type: string }[] };
    expect(list.data.map((e) => e.type)).toEqual(types);
    expect(list.data.map((e) => e.seq)).toEqual([...list.data.map((e) => e.seq)].sort((a, b) => a - b));
  });
});

describe("cancel", () => {
  it("cancels a running job, interrupts the backend, and the job never turns succeeded", async () => {
    await sim.config({ msPerImage: 3000 });
    try {
      const job = (await (await acme.post("/v1/jobs", { type: "txt2img", prompt: "slow", width: 64, height: 64 })).json()) as JobView;
      await waitForStatus(acme, job.id, "running");
      const res = await acme.post(`/v1/jobs/${job.id}/cancel`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as JobView).status).toBe("canceled");
      expect((await acme.post(`/v1/jobs/${job.id}/cancel`)).status).toBe(409);
      await new Promise((r) => setTimeout(r, 4000));
      const after = (await (await acme.get(`/v1/jobs/${job.id}`)).json()) as JobView;
      expect(after.status).toBe("canceled");
      expect(after.output).toEqual([]);
      expect((await sim.stats()).interrupts).toBeGreaterThan(0);
    } finally {
      await sim.config({ msPerImage: 20 });
    }
  });
});

describe("restart", () => {
  it("finishes a job that was running when the gateway restarted", async () => {
    await sim.config({ msPerImage: 2500 });
    try {
      const job = (await (await acme.post("/v1/jobs", { type: "txt2img", prompt: "survive", width: 64, height: 64 })).json()) as JobView;
      await waitForStatus(acme, job.id, "running");
      await gw.restart();
      await sim.config({ msPerImage: 20 });
      const done = await waitForJob(acme, job.id, 60_000);
      expect(done.status).toBe("succeeded");
      const img = await fetch(done.output[0]?.url ?? "");
      expect(img.status).toBe(200);
    } finally {
      await sim.config({ msPerImage: 20 });
    }
  });
});

/**
 * One attempt never runs twice on a GPU: a request the backend may have taken is not sent again
 * after a lost connection or a gateway restart until the backend no longer runs it, and a backend
 * answer that is a failure in disguise counts against that backend.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, waitForJob, waitForStatus, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let hollow: Awaited<ReturnType<typeof startSimulatorProcess>>;
let slow: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
let client: ReturnType<typeof api>;

beforeAll(async () => {
  [sim, hollow, slow] = await Promise.all([
    startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } }),
    // Every generation there answers 200 without images.
    startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20, emptyImages: true }) } }),
    // Slower than its backend's timeout_s allows.
    startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 40_000 }) } }),
  ]);
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-lost-calls-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ acme: { api_keys: ["sk_acme"] } }),
      BACKENDS: JSON.stringify([
        { name: "gpu", kind: "a1111", url: sim.url, max_concurrency: 1, timeout_s: 120, models: ["v1-5-pruned-emaonly"] },
        { name: "pod", kind: "runpod", url: `${sim.url}/v2/endpoint`, max_concurrency: 1, timeout_s: 120, models: ["v1-5-pruned-emaonly"] },
        { name: "hollow", kind: "a1111", url: hollow.url, max_concurrency: 1, circuit_cooldown_s: 600, models: ["v1-5-pruned-emaonly"] },
        // chilloutmix-Ni is served by a backend that answers too late, then by a quick one.
        { name: "brief", kind: "a1111", url: slow.url, max_concurrency: 1, timeout_s: 6, models: ["chilloutmix-Ni"] },
        { name: "spare", kind: "a1111", url: sim.url, max_concurrency: 1, models: ["chilloutmix-Ni"] },
        { name: "pod-brief", kind: "runpod", url: `${slow.url}/v2/endpoint`, max_concurrency: 1, timeout_s: 12, models: ["chilloutmix-Ni"] },
        // Its /run's ttl is 35 s (timeout_s and a 30 s margin): the job is gone from RunPod by then, whatever its state.
        { name: "pod-queue", kind: "runpod", url: `${sim.url}/v2/queue`, max_concurrency: 1, timeout_s: 5 },
      ]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
  client = api(gw.url, "sk_acme");
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all([sim?.stop(), hollow?.stop(), slow?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const submit = async (body: Record<string, unknown>): Promise<JobView> => {
  const res = await client.post("/v1/jobs", { type: "txt2img", width: 64, height: 64, ...body });
  expect(res.status).toBe(202);
  return (await res.json()) as JobView;
};
const eventsOf = async (id: string) => ((await (await client.get(`/v1/jobs/${id}/events`)).json()) as { data: { type: string; data: Record<string, unknown> }[] }).data;
const backend = async (name: string) =>
  ((await (await client.get("/v1/backends")).json()) as { data: { name: string; circuit: string; active: number; waiting: number; recent: { jobs: number; success_rate: number | null } }[] }).data.find((b) => b.name === name);

describe("a connection lost after the backend took the request", () => {
  it("never runs an A1111 attempt twice: it waits until A1111 no longer runs it, then runs a new attempt", async () => {
    await sim.reset();
    await sim.config({ a1111: { msPerImage: 1500, dropAfterAccept: 1 } });
    try {
      const job = await submit({ backend: "gpu", prompt: "[tag:cut-a1111] x" });
      const done = await waitForJob(client, job.id, 60_000);
      expect(done.status).toBe("succeeded");
      const stats = await sim.stats();
      expect(stats.droppedAfterAccept).toBe(1);
      // Each attempt's task ran once, and never beside the other on this one-slot backend.
      expect(Object.values(stats.byTask).length).toBeGreaterThanOrEqual(1);
      expect(Object.values(stats.byTask).every((n) => n === 1)).toBe(true);
      expect(stats.byKind.a1111.maxConcurrent).toBe(1);
      const events = await eventsOf(job.id);
      expect(events.find((e) => e.type === "attempt.lost")?.data).toMatchObject({ attempt: 1, backend: "gpu" });
    } finally {
      await sim.config({ a1111: { msPerImage: 20, dropAfterAccept: 0 } });
    }
  });

  it("never starts a second RunPod job for an attempt: the attempt's callback names the job it ran", async () => {
    await sim.reset();
    await sim.config({ runpod: { msPerImage: 300, dropAfterAccept: 1 } });
    try {
      const job = await submit({ backend: "pod", prompt: "[tag:cut-runpod] x" });
      const done = await waitForJob(client, job.id, 60_000);
      expect(done.status).toBe("succeeded");
      const stats = await sim.stats();
      expect(stats.droppedAfterAccept).toBe(1);
      expect(stats.requests["/v2/endpoint/run"]).toBe(1);
      expect(stats.byKind.runpod.generations).toBe(1);
    } finally {
      await sim.config({ runpod: { msPerImage: 20, dropAfterAccept: 0 } });
    }
  });
});

describe("a gateway restart during a long synchronous call", () => {
  it("does not start the attempt again while A1111 still runs it, and max_concurrency holds", async () => {
    // A short run first: the scheduler then presumes an orphaned run over after 15 s, well before this one ends.
    expect((await waitForJob(client, (await submit({ backend: "gpu", prompt: "warm" })).id)).status).toBe("succeeded");
    await sim.reset();
    await sim.config({ a1111: { msPerImage: 45_000 } });
    const job = await submit({ backend: "gpu", prompt: "[tag:restart] x" });
    await waitForStatus(client, job.id, "running");
    // The first generation has begun on the backend before the gateway dies.
    const until = Date.now() + 10_000;
    while ((await sim.tasks()).length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await sim.tasks()).toHaveLength(1);
    await gw.kill();
    // Whatever runs after the restart is short.
    await sim.config({ a1111: { msPerImage: 20 } });
    await gw.start();
    const done = await waitForJob(client, job.id, 90_000);
    expect(done.status).toBe("succeeded");
    const stats = await sim.stats();
    expect(stats.byTag.restart).toBe(2);
    expect(Object.values(stats.byTask).every((n) => n === 1)).toBe(true);
    expect(stats.byKind.a1111.maxConcurrent).toBe(1);
    // The lost generation was stopped rather than waited out.
    expect(stats.interrupted).toBe(1);
    const lost = (await eventsOf(job.id)).find((e) => e.type === "attempt.lost");
    expect(lost?.data).toMatchObject({ attempt: 1, backend: "gpu" });
  });
});

describe("a RunPod /run whose answer a restart cut", () => {
  it("is not sent again before RunPod has deleted it (its ttl): a run still queued there never starts beside its replacement", { timeout: 90_000 }, async () => {
    await sim.reset();
    // A cold start: the job waits 40 s in RunPod's queue, past its 35 s ttl; /run's answer comes 3 s late.
    await sim.config({ runpod: { msPerImage: 20, queueMs: 40_000, bodyDelayMs: 3_000 } });
    try {
      const submittedAt = Date.now();
      const job = await submit({ backend: "pod-queue", prompt: "[tag:cut-queued] x" });
      const until = Date.now() + 10_000;
      while (!(await sim.stats()).requests["/v2/queue/run"] && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      // RunPod has the job; the gateway dies before its id comes back.
      await gw.kill();
      await sim.config({ runpod: { queueMs: 0, bodyDelayMs: 0 } });
      await gw.start();
      expect((await waitForJob(client, job.id, 60_000)).status).toBe("succeeded");
      // Past the moment RunPod would have started the first job, had it kept it.
      await new Promise((r) => setTimeout(r, Math.max(0, submittedAt + 42_000 - Date.now())));
      const stats = await sim.stats();
      expect(stats.requests["/v2/queue/run"]).toBe(2);
      expect(stats.byTag["cut-queued"]).toBe(1);
      const lost = (await eventsOf(job.id)).find((e) => e.type === "attempt.lost");
      expect(lost?.data).toMatchObject({ attempt: 1, backend: "pod-queue" });
    } finally {
      await sim.config({ runpod: { queueMs: 0, bodyDelayMs: 0 } });
    }
  });
});

describe("a generation unanswered within its backend's timeout_s", () => {
  it("is interrupted, its slot held until A1111 no longer runs it, and the job fails over: never two at once there", { timeout: 120_000 }, async () => {
    const job = await submit({ model: "chilloutmix-Ni", prompt: "[tag:brief] x" });
    await waitForStatus(client, job.id, "running");
    // A second job for that backend alone waits while the first one's generation may run there.
    const pinned = await submit({ backend: "brief", model: "chilloutmix-Ni", prompt: "[tag:pinned] y" });
    const done = await waitForJob(client, job.id, 60_000);
    expect(done).toMatchObject({ status: "succeeded", backend: "spare" });
    const lost = (await eventsOf(job.id)).find((e) => e.type === "attempt.lost");
    expect(lost?.data).toMatchObject({ attempt: 1, backend: "brief" });
    const slowStats = await slow.stats();
    expect(slowStats.interrupted).toBeGreaterThanOrEqual(1);
    expect(slowStats.byTag.brief).toBe(1);
    // Held past its timeout, the call counts against that backend as a 5xx would.
    expect((await backend("brief"))?.recent).toMatchObject({ jobs: 1, success_rate: 0 });
    // The pinned job's own generation ends the same way; only then is it over.
    expect((await waitForJob(client, pinned.id, 90_000)).status).toBe("failed");
    expect((await slow.stats()).byKind.a1111.maxConcurrent).toBe(1);
  });
});

describe("a RunPod job canceled while RunPod cannot be told", () => {
  it("keeps its slot while the job may run there: the next job does not start beside it", { timeout: 90_000 }, async () => {
    await slow.config({ runpod: { msPerImage: 8_000 } });
    try {
      const first = await submit({ backend: "pod-brief", model: "chilloutmix-Ni", prompt: "[tag:uncanceled] x" });
      await waitForStatus(client, first.id, "running");
      await slow.config({ runpod: { down: true } });
      expect((await client.post(`/v1/jobs/${first.id}/cancel`)).status).toBe(200);
      // The cancel goes out in the background, and fails.
      await new Promise((r) => setTimeout(r, 1_500));
      await slow.config({ runpod: { down: false } });
      const second = await submit({ backend: "pod-brief", model: "chilloutmix-Ni", prompt: "[tag:after] y" });
      // The first job's slot is still taken (its RunPod job runs on): the second waits in line, not sent to RunPod.
      await new Promise((r) => setTimeout(r, 1_500));
      expect(((await (await client.get(`/v1/jobs/${second.id}`)).json()) as JobView).status).toBe("queued");
      expect(await backend("pod-brief")).toMatchObject({ active: 1, waiting: 1 });
      expect((await waitForJob(client, second.id, 60_000)).status).toBe("succeeded");
    } finally {
      await slow.config({ runpod: { msPerImage: 40_000, down: false } });
    }
  });
});

describe("a job canceled while its backend could not be told", () => {
  it("gives the slot back once the backend can be told, not at the backend's timeout: the next job runs then", { timeout: 90_000 }, async () => {
    await sim.reset();
    await sim.config({ runpod: { msPerImage: 30_000 } });
    try {
      const first = await submit({ backend: "pod", prompt: "[tag:left] x" });
      await waitForStatus(client, first.id, "running");
      await sim.config({ runpod: { down: true } });
      expect((await client.post(`/v1/jobs/${first.id}/cancel`)).status).toBe(200);
      // The cancel's stop goes out in the background, and fails: the slot is kept for the run.
      await new Promise((r) => setTimeout(r, 1_500));
      await sim.config({ runpod: { down: false, msPerImage: 20 } });
      // Its own deadline (60 s) is well before the backend's timeout after the first call began (120 s).
      const second = await submit({ backend: "pod", prompt: "[tag:next] y", timeout_s: 60 });
      expect((await waitForJob(client, second.id, 75_000)).status).toBe("succeeded");
      const stats = await sim.stats();
      expect(stats.byTag.left).toBe(1);
      expect(stats.byTag.next).toBe(1);
      // Never beside it: the next generation began once the one left running had been stopped there.
      const left = stats.lastRunByTag.left;
      expect(left?.ended_at).toEqual(expect.any(Number));
      expect(stats.lastRunByTag.next?.started_at).toBeGreaterThanOrEqual(left?.ended_at ?? Infinity);
    } finally {
      await sim.config({ runpod: { msPerImage: 20, down: false } });
    }
  });
});

describe("a failure in disguise", () => {
  it("counts a 200 without images against the backend's success rate and opens its circuit", async () => {
    for (let i = 0; i < 3; i++) {
      const done = await waitForJob(client, (await submit({ backend: "hollow", prompt: `hollow ${i}` })).id);
      expect(done.status).toBe("failed");
    }
    const status = await backend("hollow");
    expect(status?.recent.jobs).toBe(3);
    expect(status?.recent.success_rate).toBe(0);
    expect(status?.circuit).toBe("open");
  });
});

/**
 * The three backend kinds, scheduling and failover end to end: a real gateway, two simulator
 * processes (one of them the faulty one), all over HTTP.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { api, pngSize, waitForJob, waitForStatus, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";

const SD15 = "v1-5-pruned-emaonly.safetensors [6ce0161689]";
const CHILL = "chilloutmix-Ni.safetensors [7234b76e42]";
const KEYS = { SIM_RUNPOD_API_KEY: "rp_secret", SIM_CEREBRIUM_API_KEY: "cb_secret" };

let good: Awaited<ReturnType<typeof startSimulatorProcess>>;
let faulty: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
let client: ReturnType<typeof api>;

const init_image = Buffer.from(encodePng(16, 16, (x) => [x * 10, 80, 160])).toString("base64");

beforeAll(async () => {
  good = await startSimulatorProcess({ env: { ...KEYS, SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } });
  faulty = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-backends-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ acme: { api_keys: ["sk_acme"], webhook_secrets: [] }, globex: { api_keys: ["sk_globex"], webhook_secrets: [] } }),
      BACKENDS: JSON.stringify([
        // Jobs for v1-5 try "flaky" first, then "steady": the failover pair.
        { name: "flaky", kind: "a1111", url: faulty.url, models: [SD15], circuit_cooldown_s: 3 },
        // Only for jobs pinned to it: its circuit's cool-down outlasts a hard restart.
        { name: "relapse", kind: "a1111", url: faulty.url, max_concurrency: 1, circuit_cooldown_s: 8, models: ["relapse-only"] },
        { name: "steady", kind: "a1111", url: good.url, models: [SD15] },
        { name: "single", kind: "a1111", url: good.url, max_concurrency: 1, models: [CHILL] },
        { name: "runpod", kind: "runpod", url: `${good.url}/v2/sd-endpoint`, api_key: "rp_secret", models: ["runpod-only"] },
        // A second endpoint for the same model (jobs pinned to "runpod" never come here): where a job refused for now goes.
        { name: "runpod-b", kind: "runpod", url: `${faulty.url}/v2/sd-endpoint-b`, models: ["runpod-only"] },
        { name: "cerebrium", kind: "cerebrium", url: `${good.url}/cerebrium/sd-img-2-img/predict`, api_key: "cb_secret", models: ["sd-img-2-img"] },
        { name: "cerebrium-async", kind: "cerebrium", url: `${good.url}/cerebrium/sd-img-2-img/predict`, api_key: "cb_secret", async: true, timeout_s: 20, models: ["sd-img-2-img"] },
      ]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
  client = api(gw.url, "sk_acme");
});

afterAll(async () => {
  await gw?.stop();
  await good?.stop();
  await faulty?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const submit = async (body: Record<string, unknown>, as = client): Promise<JobView> => {
  const res = await as.post("/v1/jobs", { prompt: "a lighthouse", width: 64, height: 64, ...body });
  expect(res.status).toBe(202);
  return (await res.json()) as JobView;
};
/** The job as soon as it shows progress under way (bounded: undefined after 10 s). */
async function withProgress(id: string): Promise<JobView | undefined> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const now = (await (await client.get(`/v1/jobs/${id}`)).json()) as JobView;
    if (now.progress && now.progress.fraction > 0) return now;
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}

const events = async (id: string) => ((await (await client.get(`/v1/jobs/${id}/events`)).json()) as { data: { type: string; data: Record<string, unknown> }[] }).data;

async function expectImages(job: JobView, count: number) {
  expect(job.status).toBe("succeeded");
  expect(job.output).toHaveLength(count);
  for (const o of job.output) {
    const bytes = new Uint8Array(await (await fetch(o.url)).arrayBuffer());
    expect(pngSize(bytes)).toEqual({ width: 64, height: 64 });
  }
}

describe("each backend kind runs jobs", () => {
  it.each([
    ["runpod", "txt2img"],
    ["runpod", "img2img"],
    ["single", "txt2img"],
    ["single", "img2img"],
    ["cerebrium", "img2img"],
    ["cerebrium-async", "img2img"],
  ])("%s runs %s", async (backend, type) => {
    const job = await submit({ type, backend, samples: 2, ...(type === "img2img" ? { init_image } : {}) });
    const done = await waitForJob(client, job.id, 30_000);
    expect(done.backend).toBe(backend);
    await expectImages(done, 2);
  });

  it("refuses txt2img for Cerebrium's img2img model with a 422 naming the backend", async () => {
    const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "x", backend: "cerebrium" });
    expect(res.status).toBe(422);
  });
});

describe("RunPod", () => {
  it("shows the progress a streaming worker reports on the /v1 job while it runs, and null after", async () => {
    await good.config({ runpod: { msPerImage: 7000 } });
    try {
      const job = await submit({ type: "txt2img", backend: "runpod", steps: 20 });
      const live = await withProgress(job.id);
      expect(live?.progress).toMatchObject({ steps: 20, step: expect.any(Number), eta_s: expect.any(Number) });
      expect((await events(job.id)).some((e) => e.type === "job.progress")).toBe(true);
      const done = await waitForJob(client, job.id, 30_000);
      expect(done.status).toBe("succeeded");
      expect(done.progress).toBeNull();
    } finally {
      await good.config({ runpod: { msPerImage: 20 } });
    }
  });

  it("completes by polling when RunPod's webhook never comes", async () => {
    await good.config({ runpod: { dropWebhooks: true } });
    try {
      const job = await submit({ type: "txt2img", backend: "runpod" });
      const done = await waitForJob(client, job.id, 30_000);
      await expectImages(done, 1);
    } finally {
      await good.config({ runpod: { dropWebhooks: false } });
    }
  });

  it("turns a COMPLETED whose output is an error envelope, and a FAILED with a JSON-string error, into failures", async () => {
    try {
      for (const fault of [{ runpodOutputError: true }, { runpodStringError: true }]) {
        await good.config({ runpod: { runpodOutputError: false, runpodStringError: false, ...fault } });
        const job = await submit({ type: "txt2img", backend: "runpod" });
        const done = await waitForJob(client, job.id, 30_000);
        expect(done.status).toBe("failed");
        // The last attempt's reason, in Easel's words.
        expect(done.error).toMatchObject({ code: "backend_failed", message: expect.stringMatching(/out of GPU memory/) });
      }
    } finally {
      await good.config({ runpod: { runpodOutputError: false, runpodStringError: false } });
    }
  });

  it("sends /run again later when RunPod refuses it for now (a 429): the job runs once and succeeds, and the endpoint is not counted as failing", async () => {
    await good.config({ runpod: { rateLimitedRuns: 2 } });
    try {
      const before = (await good.stats()).byKind.runpod.generations;
      const job = await submit({ type: "txt2img", backend: "runpod" });
      const done = await waitForJob(client, job.id, 30_000);
      await expectImages(done, 1);
      const attempts = (await events(job.id)).filter((e) => e.type === "attempt.started" || e.type === "attempt.failed");
      expect(attempts.map((e) => [e.type, e.data.code ?? null])).toEqual([
        ["attempt.started", null],
        ["attempt.failed", "backend_busy"],
        ["attempt.started", null],
        ["attempt.failed", "backend_busy"],
        ["attempt.started", null],
      ]);
      expect((await good.stats()).byKind.runpod.generations - before).toBe(1);
      const runpod = ((await (await client.get("/v1/backends")).json()) as { data: { name: string; circuit: string; recent: { success_rate: number | null } }[] }).data.find((b) => b.name === "runpod");
      expect(runpod).toMatchObject({ circuit: "closed", recent: { success_rate: 1 } });
    } finally {
      await good.config({ runpod: { rateLimitedRuns: 0 } });
    }
  });

  it("sends a job RunPod refuses for now (a 429) to another endpoint that serves its model at once, counting the refusal against neither", async () => {
    await good.config({ runpod: { rateLimitedRuns: 1 } });
    try {
      const job = await submit({ type: "txt2img", model: "runpod-only" });
      const done = await waitForJob(client, job.id, 30_000);
      expect(done).toMatchObject({ status: "succeeded", backend: "runpod-b" });
      const attempts = (await events(job.id)).filter((e) => e.type === "attempt.started" || e.type === "attempt.failed");
      expect(attempts.map((e) => [e.type, e.data.backend, e.data.code ?? null])).toEqual([
        ["attempt.started", "runpod", null],
        ["attempt.failed", "runpod", "backend_busy"],
        ["attempt.started", "runpod-b", null],
      ]);
      const runpod = ((await (await client.get("/v1/backends")).json()) as { data: { name: string; circuit: string }[] }).data.find((b) => b.name === "runpod");
      expect(runpod?.circuit).toBe("closed");
    } finally {
      await good.config({ runpod: { rateLimitedRuns: 0 } });
    }
  });

  it("ignores a forged callback and a replayed one", async () => {
    await good.config({ runpod: { msPerImage: 1500, dropWebhooks: true } });
    try {
      const job = await submit({ type: "txt2img", backend: "runpod" });
      await waitForStatus(client, job.id, "running");
      const forged = { id: "x", status: "COMPLETED", output: { images: [init_image], parameters: {}, info: "{}" } };
      const res = await fetch(`${gw.url}/internal/callbacks/${job.id}/1/cb_guessed`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(forged) });
      expect(res.status).toBe(404);
      const done = await waitForJob(client, job.id, 30_000);
      expect(done, JSON.stringify(done.error)).toMatchObject({ status: "succeeded" });
      // The real result, not the forged 16x16 image.
      await expectImages(done, 1);
      const replay = await fetch(`${gw.url}/internal/callbacks/${job.id}/1/cb_guessed`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(forged) });
      expect(replay.status).toBe(404);
    } finally {
      await good.config({ runpod: { msPerImage: 20, dropWebhooks: false } });
    }
  });

  it("takes a callback over the inline limit (four incompressible 1024² images, ~17 MB of base64), staged through R2", async () => {
    await good.config({ runpod: { incompressible: true } });
    try {
      const job = await submit({ type: "txt2img", backend: "runpod", width: 1024, height: 1024, samples: 4 });
      const done = await waitForJob(client, job.id, 60_000);
      expect(done.status).toBe("succeeded");
      expect(done.output).toHaveLength(4);
      const bytes = new Uint8Array(await (await fetch(done.output[3]?.url ?? "")).arrayBuffer());
      expect(pngSize(bytes)).toEqual({ width: 1024, height: 1024 });
      expect(bytes.byteLength).toBeGreaterThan(3 * 1024 * 1024);
    } finally {
      await good.config({ runpod: { incompressible: false } });
    }
  });

  it("cancels the RunPod job when the Easel job is canceled", async () => {
    await good.config({ runpod: { msPerImage: 4000 } });
    try {
      const before = (await good.stats()).cancels;
      const job = await submit({ type: "txt2img", backend: "runpod" });
      await waitForStatus(client, job.id, "running");
      await new Promise((r) => setTimeout(r, 300));
      expect((await client.post(`/v1/jobs/${job.id}/cancel`)).status).toBe(200);
      const until = Date.now() + 10_000;
      while ((await good.stats()).cancels === before && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect((await good.stats()).cancels).toBeGreaterThan(before);
      await new Promise((r) => setTimeout(r, 4500));
      expect(((await (await client.get(`/v1/jobs/${job.id}`)).json()) as JobView).status).toBe("canceled");
    } finally {
      await good.config({ runpod: { msPerImage: 20 } });
    }
  });

  it("stops the RunPod job a cancel overtook: canceled while /run had not yet answered with its id", async () => {
    // RunPod runs the job at once but answers /run 1.5 s later: the cancel lands before the id is known.
    await good.config({ runpod: { msPerImage: 4000, bodyDelayMs: 1500 } });
    try {
      const before = await good.stats();
      const job = await submit({ type: "txt2img", backend: "runpod" });
      const until = Date.now() + 10_000;
      while ((await good.stats()).byKind.runpod.current === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect((await client.post(`/v1/jobs/${job.id}/cancel`)).status).toBe(200);
      // Once /run answers, the job it started is canceled there (not left running with its slot given back).
      const stopBy = Date.now() + 10_000;
      while ((await good.stats()).cancels === before.cancels && Date.now() < stopBy) await new Promise((r) => setTimeout(r, 100));
      const after = await good.stats();
      expect(after.cancels).toBe(before.cancels + 1);
      expect(after.interrupted).toBe(before.interrupted + 1);
      expect(after.byKind.runpod.current).toBe(0);
    } finally {
      await good.config({ runpod: { msPerImage: 20, bodyDelayMs: 0 } });
    }
  });
});

describe("an A1111 serving its API only (--nowebui: no /internal/progress)", () => {
  it("shows the live progress /sdapi/v1/progress names the task with, and interrupts the task on cancel", async () => {
    await good.config({ a1111: { nowebui: true, msPerImage: 6000 } });
    try {
      const before = (await good.stats()).interrupts;
      const job = await submit({ type: "txt2img", model: "chilloutmix-Ni", steps: 20 });
      const live = await withProgress(job.id);
      expect(live?.progress).toMatchObject({ steps: 20, step: expect.any(Number), eta_s: expect.any(Number) });
      expect((await client.post(`/v1/jobs/${job.id}/cancel`)).status).toBe(200);
      const stopBy = Date.now() + 10_000;
      while ((await good.stats()).interrupts === before && Date.now() < stopBy) await new Promise((r) => setTimeout(r, 100));
      expect((await good.stats()).interrupts).toBe(before + 1);
    } finally {
      await good.config({ a1111: { nowebui: false, msPerImage: 20 } });
    }
  });
});

describe("an A1111 serving its API only, across a gateway restart", () => {
  it("sends a cut generation again once A1111 runs nothing, there, counting it against nobody", async () => {
    await good.config({ a1111: { nowebui: true, msPerImage: 4000 } });
    try {
      const job = await submit({ type: "txt2img", model: "chilloutmix-Ni", prompt: "[tag:nowebui-restart] x" });
      await waitForStatus(client, job.id, "running");
      const until = Date.now() + 10_000;
      while ((await good.tasks()).length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      await gw.kill();
      await good.config({ a1111: { nowebui: true, msPerImage: 20 } });
      await gw.start();
      const done = await waitForJob(client, job.id, 60_000);
      expect(done).toMatchObject({ status: "succeeded", backend: "single" });
      const single = ((await (await client.get("/v1/backends")).json()) as { data: { name: string; circuit: string; recent: { success_rate: number | null } }[] }).data.find((b) => b.name === "single");
      expect(single).toMatchObject({ circuit: "closed", recent: { success_rate: 1 } });
      const stats = await good.stats();
      expect(Object.values(stats.byTask).every((n) => n === 1)).toBe(true);
    } finally {
      await good.config({ a1111: { nowebui: false, msPerImage: 20 } });
    }
  });
});

describe("scheduling", () => {
  it("runs 6 concurrent jobs on a max_concurrency 1 backend, never more than one at a time", async () => {
    await good.config({ a1111: { msPerImage: 300 } });
    await good.reset();
    try {
      const jobs = await Promise.all(Array.from({ length: 6 }, (_, i) => submit({ type: "txt2img", model: "chilloutmix-Ni", seed: i }, i % 2 ? client : api(gw.url, "sk_globex"))));
      const done = await Promise.all(jobs.map((j, i) => waitForJob(i % 2 ? client : api(gw.url, "sk_globex"), j.id, 60_000)));
      expect(done.map((j) => j.status)).toEqual(Array(6).fill("succeeded"));
      expect((await good.stats()).byKind.a1111.maxConcurrent).toBe(1);
    } finally {
      await good.config({ a1111: { msPerImage: 20 } });
    }
  });

  it("starts the next job on a one-slot backend as soon as it has answered, while its answer is still arriving", async () => {
    // The GPU is done once the headers come; the body (a large answer, a slow link) takes 1.5 s more.
    await good.config({ a1111: { msPerImage: 100, bodyDelayMs: 1500 } });
    await good.reset();
    try {
      const first = await submit({ type: "txt2img", model: "chilloutmix-Ni", prompt: "[tag:slot-first] x" });
      await waitForStatus(client, first.id, "running");
      const second = await submit({ type: "txt2img", model: "chilloutmix-Ni", prompt: "[tag:slot-second] x" });
      const [a, b] = await Promise.all([waitForJob(client, first.id, 30_000), waitForJob(client, second.id, 30_000)]);
      expect([a.status, b.status]).toEqual(["succeeded", "succeeded"]);
      const stats = await good.stats();
      const secondStarted = stats.lastRunByTag["slot-second"]?.started_at ?? Infinity;
      // Generated before the first job's images were in: it did not wait for that body.
      expect(secondStarted).toBeLessThan(Date.parse(a.completed_at ?? ""));
      expect(stats.byKind.a1111.maxConcurrent).toBe(1);
    } finally {
      await good.config({ a1111: { msPerImage: 20, bodyDelayMs: 0 } });
    }
  });

  it("loses no queued job when the gateway restarts while the backend is saturated", async () => {
    await good.config({ a1111: { msPerImage: 600 } });
    try {
      const jobs = await Promise.all(Array.from({ length: 4 }, () => submit({ type: "txt2img", model: "chilloutmix-Ni" })));
      await waitForStatus(client, jobs[0]?.id ?? "", "running");
      await gw.restart();
      const done = await Promise.all(jobs.map((j) => waitForJob(client, j.id, 90_000)));
      expect(done.map((j) => j.status)).toEqual(Array(4).fill("succeeded"));
    } finally {
      await good.config({ a1111: { msPerImage: 20 } });
    }
  });
});

describe("failover and health", () => {
  it("moves a job off a backend that is down and records the failed attempt; one tenant's jobs alone open its circuit", async () => {
    await faulty.config({ down: true });
    try {
      const job = await submit({ type: "txt2img", model: "v1-5-pruned-emaonly" });
      const done = await waitForJob(client, job.id, 30_000);
      expect(done.status).toBe("succeeded");
      expect(done.backend).toBe("steady");
      const list = await events(job.id);
      expect(list.filter((e) => e.type === "attempt.failed").map((e) => e.data.backend)).toContain("flaky");
      // Unreachable is no request's doing: acme's own jobs open the circuit, though two tenants share it.
      for (let i = 0; i < 2; i++) await waitForJob(client, (await submit({ type: "txt2img", model: "v1-5-pruned-emaonly" })).id, 30_000);
      const flaky = ((await (await client.get("/v1/backends")).json()) as { data: { name: string; circuit: string }[] }).data.find((b) => b.name === "flaky");
      expect(flaky?.circuit).toBe("open");
    } finally {
      await faulty.config({ down: false });
    }
  });

  it("opens the circuit of a backend failing both tenants' jobs, skips it, then closes it after a successful probe", async () => {
    await new Promise((r) => setTimeout(r, 3500));
    await faulty.config({ errorRate: 1 });
    for (let i = 0; i < 3; i++) {
      const as = i % 2 ? api(gw.url, "sk_globex") : client;
      const done = await waitForJob(as, (await submit({ type: "txt2img", model: "v1-5-pruned-emaonly" }, as)).id, 30_000);
      expect(done.backend).toBe("steady");
    }
    // Open: the next job does not even try the failing backend.
    const skipped = await waitForJob(client, (await submit({ type: "txt2img", model: "v1-5-pruned-emaonly" })).id, 30_000);
    expect((await events(skipped.id)).filter((e) => e.type === "attempt.started").map((e) => e.data.backend)).toEqual(["steady"]);
    // Healthy again; after the cool-down one probe job closes the circuit.
    await faulty.config({ errorRate: 0 });
    await new Promise((r) => setTimeout(r, 3500));
    const probe = await waitForJob(client, (await submit({ type: "txt2img", model: "v1-5-pruned-emaonly" })).id, 30_000);
    expect(probe.backend).toBe("flaky");
    const after = await waitForJob(client, (await submit({ type: "txt2img", model: "v1-5-pruned-emaonly" })).id, 30_000);
    expect(after.backend).toBe("flaky");
  });

  it("hands a recovered backend's probe, then its slots, to the jobs that queued elsewhere while its circuit was open", async () => {
    await new Promise((r) => setTimeout(r, 3500));
    await faulty.config({ errorRate: 1 });
    for (let i = 0; i < 3; i++) {
      const as = i % 2 ? api(gw.url, "sk_globex") : client;
      await waitForJob(as, (await submit({ type: "txt2img", model: "v1-5-pruned-emaonly" }, as)).id, 30_000);
    }
    expect(((await (await client.get("/v1/backends")).json()) as { data: { name: string; circuit: string }[] }).data.find((b) => b.name === "flaky")?.circuit).toBe("open");
    // Healthy again, but open for its cool-down; the other backend is slow: five jobs queue there.
    await faulty.config({ errorRate: 0 });
    await good.config({ a1111: { msPerImage: 4000 } });
    try {
      const jobs = await Promise.all(Array.from({ length: 5 }, () => submit({ type: "txt2img", model: "v1-5-pruned-emaonly" })));
      const done = await Promise.all(jobs.map((j) => waitForJob(client, j.id, 60_000)));
      expect(done.map((j) => j.status)).toEqual(Array(5).fill("succeeded"));
      // Once its cool-down ended, the recovered backend took those jobs up: they did not all wait for the slow one.
      expect(done.filter((j) => j.backend === "flaky").length).toBeGreaterThanOrEqual(2);
    } finally {
      await good.config({ a1111: { msPerImage: 20 } });
    }
  });

  it("still offers the probe at a cool-down's end after hard restarts: jobs pinned behind an open circuit do not wait for their own backstop", { timeout: 150_000 }, async () => {
    const relapse = async () => ((await (await client.get("/v1/backends")).json()) as { data: { name: string; circuit: string; waiting: number }[] }).data.find((b) => b.name === "relapse");
    const pinned = (timeout_s?: number) => submit({ type: "txt2img", backend: "relapse", timeout_s });
    const openCircuit = async () => {
      await faulty.config({ errorRate: 1, msPerImage: 20 });
      try {
        for (let i = 0; i < 3; i++) {
          const as = i % 2 ? api(gw.url, "sk_globex") : client;
          expect((await waitForJob(as, (await submit({ type: "txt2img", backend: "relapse" }, as)).id, 30_000)).status).toBe("failed");
        }
      } finally {
        await faulty.config({ errorRate: 0 });
      }
      expect((await relapse())?.circuit).toBe("open");
    };
    /** Until the backend's line holds `n` (bounded). */
    const lineOf = async (n: number) => {
      const until = Date.now() + 15_000;
      while ((await relapse())?.waiting !== n && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect((await relapse())?.waiting).toBe(n);
    };
    try {
      // The gateway dies while the reopening circuit's probe generates...
      await openCircuit();
      await faulty.config({ msPerImage: 20_000 });
      const first = await Promise.all([0, 1, 2].map(() => pinned()));
      await waitForStatus(client, first[0]?.id ?? "", "running", 30_000);
      await new Promise((r) => setTimeout(r, 1_000));
      await gw.kill();
      await faulty.config({ msPerImage: 20 });
      await gw.start();
      expect((await Promise.all(first.map((j) => waitForJob(client, j.id, 60_000)))).map((j) => j.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
      // ...and again during the next cool-down, its line waiting. Their deadline is long past the
      // cool-down and well before the 5-minute backstop of a waiting job.
      await openCircuit();
      const second = await Promise.all([0, 1, 2].map(() => pinned(40)));
      await lineOf(3);
      await gw.kill();
      await gw.start();
      expect((await Promise.all(second.map((j) => waitForJob(client, j.id, 50_000)))).map((j) => j.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    } finally {
      await faulty.config({ errorRate: 0, msPerImage: 20 });
    }
  });

  it("fails a job pinned to a dead backend with backend_failed, never running it elsewhere", async () => {
    await faulty.config({ down: true });
    try {
      const job = await submit({ type: "txt2img", backend: "flaky" });
      const done = await waitForJob(client, job.id, 60_000);
      expect(done.status).toBe("failed");
      expect(done.error?.code).toBe("backend_failed");
      expect((await events(job.id)).filter((e) => e.type === "attempt.started").map((e) => e.data.backend)).toEqual(["flaky"]);
    } finally {
      await faulty.config({ down: false });
    }
  });
});

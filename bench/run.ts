/**
 * `npm run bench`: starts its own simulator(s), webhook receiver and `wrangler dev` gateways on
 * loopback, measures, prints, and stops them. Every figure of one run is measured in that run,
 * so ratios compare like with like on this shared, noisy machine.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startGateway, startSimulatorProcess, type GatewayProcess } from "../test/e2e/support/processes";
import { connectDevTools, measurePeak } from "./memory";
import { comfyui } from "./comfyui";
import { fsyncs } from "./fsyncs";
import { phases } from "./phases";
import { scale } from "./scale";
import { startReceiver } from "../test/e2e/support/receiver";
import { generateImages } from "../gpu-simulator/generate";

const KEY = "sk_bench";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TENANTS = JSON.stringify({ bench: { api_keys: [KEY], webhook_secrets: [SECRET] } });
const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
const JOB = { type: "txt2img", prompt: "bench", width: 64, height: 64, steps: 1 };

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};
const ms = (n: number) => `${n.toFixed(1)} ms`;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));
/** Jobs timed end to end, each in turns with the floor's: enough that one run's median moves little. */
const E2E_JOBS = 100;

async function timed(fn: () => Promise<Response>): Promise<number> {
  const t = performance.now();
  const res = await fn();
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`bench request failed: ${res.status}`);
  return performance.now() - t;
}

type JobView = { id: string; status: string; completed_at: string | null };

/** Waits on the job's Server-Sent Events, which end with the job: no polling load on the gateway. */
async function waitDone(base: string, id: string, timeoutMs: number): Promise<JobView> {
  const res = await fetch(`${base}/v1/jobs/${id}/events`, { headers: { ...auth, accept: "text/event-stream" }, signal: AbortSignal.timeout(timeoutMs) });
  await res.text();
  const job = (await (await fetch(`${base}/v1/jobs/${id}`, { headers: auth })).json()) as JobView;
  if (!["succeeded", "failed", "canceled"].includes(job.status)) throw new Error(`job ${id} did not finish in ${timeoutMs} ms`);
  return job;
}

const submit = async (base: string, body: object = JOB): Promise<string> => {
  const res = await fetch(`${base}/v1/jobs`, { method: "POST", headers: auth, body: JSON.stringify(body) });
  if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as JobView).id;
};

/** The floor Worker (bench/floor/worker.ts): only a job's irreducible work, to compare the gateway with. */
const FLOOR_CONFIG = fileURLToPath(new URL("./floor/wrangler.toml", import.meta.url));

async function withGateway<T>(vars: Record<string, string>, fn: (url: string, gw: GatewayProcess) => Promise<T>, config?: string): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "easel-bench-"));
  const gw = await startGateway({ persistDir: dir, config, vars: { TENANTS, ALLOW_PRIVATE_URLS: "true", URL_SIGNING_SECRET: "bench", WEBHOOK_RETRY_SCHEDULE: "1,1,1", ...vars } });
  try {
    return await fn(gw.url, gw);
  } finally {
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results: Record<string, string> = {};
const report = (name: string, value: string) => {
  results[name] = value;
  console.log(`${name.padEnd(58)} ${value}`);
};

async function coreAndWebhooks(): Promise<void> {
  const sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 5 }) } });
  const receiver = await startReceiver({ secrets: [SECRET] });
  try {
    const backends = JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url, max_concurrency: 256 }]);
    await withGateway({}, (floor) => withGateway({ BACKENDS: backends }, async (base) => {
      // Warm-up: the first requests compile and instantiate everything.
      for (let i = 0; i < 20; i++) {
        await timed(() => fetch(`${base}/healthz`));
        await submit(base);
        await timed(() => fetch(`${floor}/submit`, { method: "POST", body: JSON.stringify(JOB) }));
      }
      // /healthz alone, with nothing else running: the yardstick. Then, in turns, a submit and the
      // request right after it (which pays for whatever the submit left running on the one local
      // thread: its dispatch, generation and webhook), and the same pair on the floor Worker.
      await sleep(2000);
      const quietMs: number[] = [];
      const floorQuietMs: number[] = [];
      for (let i = 0; i < 200; i++) {
        quietMs.push(await timed(() => fetch(`${base}/healthz`)));
        floorQuietMs.push(await timed(() => fetch(`${floor}/healthz`)));
      }
      const submitMs: number[] = [];
      const afterMs: number[] = [];
      const floorMs: number[] = [];
      const floorAfterMs: number[] = [];
      for (let i = 0; i < 200; i++) {
        submitMs.push(await timed(() => fetch(`${base}/v1/jobs`, { method: "POST", headers: auth, body: JSON.stringify(JOB) })));
        afterMs.push(await timed(() => fetch(`${base}/healthz`)));
        floorMs.push(await timed(() => fetch(`${floor}/submit`, { method: "POST", body: JSON.stringify(JOB) })));
        floorAfterMs.push(await timed(() => fetch(`${floor}/healthz`)));
      }
      const p50 = (xs: number[]) => quantile(xs, 0.5);
      report("POST /v1/jobs p50 / p99", `${ms(p50(submitMs))} / ${ms(quantile(submitMs, 0.99))}`);
      report("GET /healthz alone p50 / p99", `${ms(p50(quietMs))} / ${ms(quantile(quietMs, 0.99))}`);
      report("GET /healthz right after a submit p50 / p99", `${ms(p50(afterMs))} / ${ms(quantile(afterMs, 0.99))}`);
      report("floor Worker: new-object write + R2 put p50 / healthz alone p50", `${ms(p50(floorMs))} / ${ms(p50(floorQuietMs))}`);
      report("floor Worker: healthz right after its submit p50", ms(p50(floorAfterMs)));
      report("submit p50 / healthz alone p50 (target ≤ 1.5)", (p50(submitMs) / p50(quietMs)).toFixed(2));
      report("floor submit p50 / floor healthz alone p50 (the runtime's own ratio)", (p50(floorMs) / p50(floorQuietMs)).toFixed(2));
      report("submit p50 / floor submit p50 (target ≤ 1.2)", (p50(submitMs) / p50(floorMs)).toFixed(2));
      report("healthz right after a submit / healthz alone (target ≤ 1.2)", (p50(afterMs) / p50(quietMs)).toFixed(2));

      const total = 1000;
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          while (next < total) {
            next++;
            await submit(base);
          }
        }),
      );
      report("submits per second, 100 concurrent clients", ((total / (performance.now() - t0)) * 1000).toFixed(0));
      await sleep(3000);

      // Submit → signed webhook received, on a zero-latency backend, against calling it directly; the
      // job's own event times, the simulator's generation times and the receipt split it into steps.
      // Both ends are this process's clock (to the receiver's arrival of the body, before it is
      // parsed or verified), so the floor and the gateway are timed alike and below the millisecond.
      const direct: number[] = [];
      const e2e: number[] = [];
      const steps: Record<string, number[]> = {};
      const step = (name: string, v: number) => (steps[name] ??= []).push(v);
      const a1111Body = JSON.stringify({ prompt: "bench", width: 64, height: 64, steps: 1, seed: 1 });
      const floorE2e: number[] = [];
      const contractE2e: number[] = [];
      const floorRunOf = async (path: string): Promise<number> => {
        const start = performance.now();
        const run = (await (await fetch(`${floor}${path}`, { method: "POST", body: JSON.stringify({ backend: `${sim.url}/sdapi/v1/txt2img`, body: JSON.parse(a1111Body), webhook: `${receiver.url}/floor` }) })).json()) as { id: string };
        const hit = await receiver.waitFor((d) => (d.json as { data?: { id?: string } }).data?.id === run.id, 30_000);
        return hit.arrivedAt - start;
      };
      // The contract floor's index objects and line exist before it is timed, as the gateway's do.
      for (let i = 0; i < 40; i++) await floorRunOf("/run-contract");
      for (let i = 0; i < E2E_JOBS; i++) {
        direct.push(await timed(() => fetch(`${sim.url}/sdapi/v1/txt2img`, { method: "POST", headers: { "content-type": "application/json" }, body: a1111Body })));
        floorE2e.push(await floorRunOf("/run"));
        contractE2e.push(await floorRunOf("/run-contract"));
        const tag = `e2e-${i}-${Date.now()}`;
        const t = Date.now();
        const tPerf = performance.now();
        const res = await fetch(`${base}/v1/jobs`, { method: "POST", headers: auth, body: JSON.stringify({ ...JOB, prompt: `[tag:${tag}] bench`, webhook: `${receiver.url}/e2e` }) });
        const accepted = Date.now();
        const id = ((await res.json()) as JobView).id;
        const hit = await receiver.waitFor((d) => (d.json as { data?: { id?: string } }).data?.id === id, 30_000);
        e2e.push(hit.arrivedAt - tPerf);
        const events = ((await (await fetch(`${base}/v1/jobs/${id}/events`, { headers: auth })).json()) as { data: { type: string; at: string | number }[] }).data;
        const at = (type: string) => {
          const e = events.find((x) => x.type === type);
          return e === undefined ? NaN : typeof e.at === "number" ? e.at : Date.parse(e.at);
        };
        const run = (await sim.stats()).lastRunByTag[tag];
        step("submit answered (202)", accepted - t);
        step("created → dispatched (job alarm, scheduler acquire)", at("attempt.started") - at("job.queued"));
        step("dispatched → backend generating (request built and sent)", (run?.started_at ?? NaN) - at("attempt.started"));
        step("backend generating", (run?.ended_at ?? NaN) - (run?.started_at ?? NaN));
        step("backend done → job succeeded (answer read, R2 writes, final transaction)", at("job.succeeded") - (run?.ended_at ?? NaN));
        step("job succeeded → webhook received (body rendered, signed, delivered)", hit.receivedAt - at("job.succeeded"));
      }
      report("submit → signed webhook received p50 / p99", `${ms(quantile(e2e, 0.5))} / ${ms(quantile(e2e, 0.99))}`);
      report("direct backend call p50", ms(quantile(direct, 0.5)));
      report("submit → webhook p50 minus direct call p50 (target ≤ +10 ms)", `+${ms(quantile(e2e, 0.5) - quantile(direct, 0.5))}`);
      report("floor Worker: request → webhook p50 (write, call, R2 put, write, POST)", ms(quantile(floorE2e, 0.5)));
      report("submit → webhook p50 / floor p50 (target ≤ 1.2)", (quantile(e2e, 0.5) / quantile(floorE2e, 0.5)).toFixed(2));
      report("contract floor: request → webhook p50 (+ index row, alarm, slot, attempt write)", ms(quantile(contractE2e, 0.5)));
      report("contract floor p50 / floor p50 (the contract's own writes here)", (quantile(contractE2e, 0.5) / quantile(floorE2e, 0.5)).toFixed(2));
      report("submit → webhook p50 / contract floor p50", (quantile(e2e, 0.5) / quantile(contractE2e, 0.5)).toFixed(2));
      for (const [name, xs] of Object.entries(steps)) report(`  step p50: ${name}`, ms(quantile(xs.filter(Number.isFinite), 0.5)));

      // 200 jobs that finish together: time from the first completion to the 200th receipt.
      await sim.config({ msPerImage: 2000 });
      const before = receiver.deliveries.length;
      const ids = await Promise.all(Array.from({ length: 200 }, () => submit(base, { ...JOB, webhook: `${receiver.url}/burst` })));
      const want = new Set(ids);
      const until = Date.now() + 120_000;
      while (receiver.deliveries.slice(before).filter((d) => want.has((d.json as { data?: { id?: string } }).data?.id ?? "")).length < 200 && Date.now() < until) await sleep(50);
      const burst = receiver.deliveries.slice(before).filter((d) => want.has((d.json as { data?: { id?: string } }).data?.id ?? ""));
      const firstDone = Math.min(...burst.map((d) => Date.parse((d.json as { data: JobView }).data.completed_at ?? "")));
      const lastReceipt = Math.max(...burst.map((d) => d.receivedAt));
      report("200 simultaneous completions: all 200 webhooks delivered in", `${ms(lastReceipt - firstDone)} (${burst.length}/200 received)`);
    }), FLOOR_CONFIG);
  } finally {
    await receiver.close();
    await sim.stop();
  }
}

async function scheduling(): Promise<void> {
  const steady = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 200 }) } });
  const flaky = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 200, errorRate: 0.3 }) } });
  try {
    const ideal = (50 * 200) / 2;
    await withGateway({ BACKENDS: JSON.stringify([{ name: "a", kind: "a1111", url: steady.url, max_concurrency: 2 }]) }, async (base) => {
      const t = performance.now();
      const ids = await Promise.all(Array.from({ length: 50 }, () => submit(base)));
      const done = await Promise.all(ids.map((id) => waitDone(base, id, 120_000)));
      const took = performance.now() - t;
      const stats = await steady.stats();
      report("50 jobs, max_concurrency 2, 200 ms/image: total / ideal", `${ms(took)} / ${ms(ideal)} = ${(took / ideal).toFixed(2)}x (${done.filter((j) => j.status === "succeeded").length}/50 ok, max concurrent ${stats.maxConcurrent})`);
    });
    await withGateway(
      {
        BACKENDS: JSON.stringify([
          { name: "flaky", kind: "a1111", url: flaky.url, max_concurrency: 2 },
          { name: "steady", kind: "a1111", url: steady.url, max_concurrency: 2 },
        ]),
      },
      async (base) => {
        const t = performance.now();
        const ids = await Promise.all(Array.from({ length: 50 }, () => submit(base)));
        const done = await Promise.all(ids.map((id) => waitDone(base, id, 180_000)));
        const took = performance.now() - t;
        // Two backends of 2 slots each: the ideal is twice as fast as with one.
        const ideal4 = (50 * 200) / 4;
        report("same, 2 backends (2 slots each), one failing 30%: total / ideal", `${ms(took)} / ${ms(ideal4)} = ${(took / ideal4).toFixed(2)}x (${done.filter((j) => j.status === "succeeded").length}/50 ok)`);
      },
    );
  } finally {
    await steady.stop();
    await flaky.stop();
  }
}

/**
 * One tenant's submit rate, all of it through that tenant's one index object: 20 concurrent clients,
 * three rounds of 500 submits, the jobs running as they come (5 ms per image). `bench/compare.ts`
 * sets two checkouts side by side (with and without a change) on this shared machine.
 */
async function tenantThroughput(): Promise<void> {
  const sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 5 }) } });
  try {
    await withGateway({ BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url, max_concurrency: 64 }]) }, async (base) => {
      for (let i = 0; i < 20; i++) await submit(base);
      const rates: number[] = [];
      let failed = 0;
      for (let round = 0; round < 3; round++) {
        const total = 500;
        let next = 0;
        let ok = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: 20 }, async () => {
            while (next < total) {
              next++;
              const res = await fetch(`${base}/v1/jobs`, { method: "POST", headers: auth, body: JSON.stringify(JOB) });
              await res.arrayBuffer();
              if (res.status === 202) ok++;
              else failed++;
            }
          }),
        );
        rates.push((ok / (performance.now() - t0)) * 1000);
        await sleep(2000);
      }
      const sorted = [...rates].sort((a, b) => a - b);
      report("one tenant, accepted submits per second (median of 3 × 500, 20 clients)", `${(sorted[1] ?? 0).toFixed(0)} (rounds: ${rates.map((r) => r.toFixed(0)).join(", ")}; ${failed} not accepted)`);
    });
  } finally {
    await sim.stop();
  }
}

/**
 * The largest job the contract allows, 4 × 2048² with incompressible PNGs (~12 MB each, ~67 MB of
 * base64 in an answer), through each path that carries its images; the peak resident size of
 * workerd over its size just before. A production isolate has 128 MB.
 */
/** An img2img job whose init image is an incompressible PNG of side² pixels (~3 bytes a pixel), as a data URI; a small output. */
function initJob(side: number, seed: number): object {
  const [png] = generateImages({ prompt: "init", seed, width: side, height: side, count: 1, incompressible: true });
  return { type: "img2img", prompt: "bench", init_image: `data:image/png;base64,${png?.toString("base64") ?? ""}`, width: 512, height: 512, steps: 1, seed };
}

async function memory(only?: string): Promise<void> {
  const sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 0, incompressible: true }) } });
  const receiver = await startReceiver({ secrets: [SECRET] });
  const LARGE = { prompt: "bench", width: 2048, height: 2048, steps: 1, seed: 7 };
  try {
    const backends = JSON.stringify([
      { name: "a1111", kind: "a1111", url: sim.url, max_concurrency: 4 },
      { name: "runpod", kind: "runpod", url: `${sim.url}/v2/bench`, max_concurrency: 4, models: ["runpod-only"] },
    ]);
    const ok = (done: JobView) => {
      if (done.status !== "succeeded") throw new Error(`large job ended ${done.status}`);
    };
    const paths: [string, (base: string) => Promise<void>][] = [
      ["/v1 job on an A1111 backend", async (base) => ok(await waitDone(base, await submit(base, { type: "txt2img", ...LARGE, samples: 4, backend: "a1111" }), 120_000))],
      ["/v1 job on a RunPod backend (its callback)", async (base) => ok(await waitDone(base, await submit(base, { type: "txt2img", ...LARGE, samples: 4, backend: "runpod" }), 120_000))],
      [
        "/v1 job on a RunPod backend (its callback chunked, no Content-Length)",
        async (base) => {
          await sim.config({ runpod: { chunkedWebhooks: true } });
          try {
            ok(await waitDone(base, await submit(base, { type: "txt2img", ...LARGE, samples: 4, backend: "runpod" }), 120_000));
          } finally {
            await sim.config({ runpod: { chunkedWebhooks: false } });
          }
        },
      ],
      [
        "A1111 dialect, base64 answer (/sdapi/v1/txt2img)",
        async (base) => {
          const res = await fetch(`${base}/sdapi/v1/txt2img`, { method: "POST", headers: auth, body: JSON.stringify({ ...LARGE, batch_size: 4 }) });
          const json = (await res.json()) as { images?: string[] };
          if (res.status !== 200 || json.images?.length !== 4) throw new Error(`A1111 dialect answered ${res.status}`);
        },
      ],
      [
        "RunPod dialect, webhook with base64 images",
        async (base) => {
          const res = await fetch(`${base}/runpod/run`, { method: "POST", headers: auth, body: JSON.stringify({ input: { api_name: "txt2img", ...LARGE, batch_size: 4 }, webhook: `${receiver.url}/large` }) });
          const { id } = (await res.json()) as { id: string };
          const hit = await receiver.waitFor((d) => (d.json as { id?: string }).id === id, 180_000);
          if ((hit.json as { output?: { images?: string[] } }).output?.images?.length !== 4) throw new Error("webhook without its 4 images");
        },
      ],
      [
        "/v1 img2img, four at once, each a 9.7 MB PNG, on an A1111 backend",
        async (base) => {
          const ids = await Promise.all([1, 2, 3, 4].map((n) => submit(base, { ...initJob(1800, n), backend: "a1111" })));
          for (const id of ids) ok(await waitDone(base, id, 120_000));
        },
      ],
      ["/v1 img2img, a 7.1 MB PNG, on a RunPod backend (its /run)", async (base) => ok(await waitDone(base, await submit(base, { ...initJob(1536, 1), backend: "runpod" }), 120_000))],
    ];
    // A fresh gateway for each path: workerd keeps the memory it once took, which would hide the next path's peak.
    for (const [name, run] of paths.filter(([name]) => !only || name.includes(only))) {
      await withGateway({ BACKENDS: backends }, async (base, gw) => {
        const pgid = gw.pgid();
        if (pgid === undefined) throw new Error("gateway not running");
        // Warm-up with small images: compiles every path, so the peak below is the images' cost.
        await waitDone(base, await submit(base, { ...JOB, backend: "runpod" }), 30_000);
        await (await fetch(`${base}/sdapi/v1/txt2img`, { method: "POST", headers: auth, body: JSON.stringify({ prompt: "w", width: 64, height: 64, steps: 1 }) })).arrayBuffer();
        const devtools = await connectDevTools(gw.inspectorPort);
        await sleep(500);
        const heapPeak = devtools.sampleHeap();
        let failure = "";
        const { before, peak, exited } = await measurePeak(pgid, () =>
          run(base).catch((err: unknown) => {
            failure = err instanceof Error ? err.message : String(err);
          }),
        );
        const heap = heapPeak();
        devtools.close();
        const note = [exited && "workerd exited during the run", failure && `failed: ${failure}`].filter(Boolean).join("; ");
        report(`peak workerd RSS, ${name}`, `${peak.toFixed(0)} MB (+${(peak - before).toFixed(0)} MB over ${before.toFixed(0)} MB idle)${note ? ` (${note})` : ""}`);
        report(`peak JS heap of the isolate, ${name}`, `${heap.toFixed(0)} MB (limit 128 MB per isolate in production)`);
      });
    }
  } finally {
    await receiver.close();
    await sim.stop();
  }
}

// `npm run bench -- throughput` runs one section; no argument runs them all.
const sections: Record<string, () => Promise<void>> = {
  core: coreAndWebhooks,
  scheduling,
  throughput: tenantThroughput,
  // `npm run bench -- memory img2img` runs only the paths whose name has "img2img".
  memory: () => memory(process.argv[3]),
  scale: () => scale({ auth, submit, job: JOB, secret: SECRET, withGateway, report, sizes: process.argv[3]?.split(",").map(Number) }),
  comfyui: () => comfyui({ auth, secret: SECRET, withGateway, report }),
  phases: () => phases({ auth, secret: SECRET, job: JOB, floorConfig: FLOOR_CONFIG, withGateway, report }),
  fsyncs: () => fsyncs({ auth, secret: SECRET, job: JOB, floorConfig: FLOOR_CONFIG, withGateway, report }),
};
for (const [name, run] of Object.entries(sections)) if (!process.argv[2] || process.argv[2] === name) await run();
console.log(JSON.stringify(results));

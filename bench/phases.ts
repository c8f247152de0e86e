/**
 * `npm run bench -- phases`: where a job's CPU goes on workerd's one local thread, by phase of the
 * job, for the gateway and for the floor Worker (bench/floor/), one after the other. `perf` samples
 * workerd on the monotonic clock; the samples are split by the client's submit, the simulator's own
 * start and end of generation and the receiver's receipt, so the code needs no marks. Needs Linux
 * `perf` and the right to sample a process; without them the section says so and measures nothing.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GatewayProcess } from "../test/e2e/support/processes";
import { startSimulatorProcess } from "../test/e2e/support/processes";
import { startReceiver } from "../test/e2e/support/receiver";
import { sleep, workerdPid, type TracedContext } from "./traced";

const FREQUENCY_HZ = 4000;
const JOBS = 40;
const WARM_UP = 15;
/** After each webhook: the job's follow-ups (the slot's release, the index's end report) run here. */
const AFTER_MS = 300;

/** A job's moments on the monotonic clock (ms): submitted, generation started and ended, webhook received, follow-ups over. */
type Moments = [submit: number, started: number, ended: number, received: number, after: number];
const PHASES = ["submit → the backend starts generating", "the backend generating", "generation over → webhook received", "after the webhook (follow-ups)"] as const;

const mono = (): number => Number(process.hrtime.bigint()) / 1e6;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** The sample times (ms) of the process's busiest thread: workerd runs every isolate on one. */
function mainThreadSamples(file: string): number[] {
  const out = spawnSync("perf", ["script", "-i", file, "-F", "tid,time"], { encoding: "utf8", maxBuffer: 512 * 1024 * 1024 });
  const byThread = new Map<string, number[]>();
  for (const line of out.stdout.split("\n")) {
    const [tid, time] = line.trim().split(/\s+/);
    if (!tid || !time) continue;
    const list = byThread.get(tid) ?? [];
    list.push(Number.parseFloat(time) * 1000);
    byThread.set(tid, list);
  }
  return [...byThread.values()].reduce((a, b) => (b.length > a.length ? b : a), []).sort((a, b) => a - b);
}

const countIn = (sorted: number[], from: number, to: number): number => {
  const lower = (x: number) => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((sorted[mid] ?? 0) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return lower(to) - lower(from);
};

/** Runs `one` WARM_UP times, then JOBS times under `perf`; the CPU (ms per job) and wall p50 of each phase. */
async function measure(gw: GatewayProcess, one: (i: number) => Promise<Moments>): Promise<{ cpu: number; wall: number }[] | string> {
  for (let i = 0; i < WARM_UP; i++) await one(i);
  const pid = workerdPid(gw);
  if (!pid) return "workerd not found";
  const dir = mkdtempSync(join(tmpdir(), "easel-phases-"));
  const file = join(dir, "perf.data");
  try {
    const perf = spawn("perf", ["record", "-q", "-k", "CLOCK_MONOTONIC", "-F", String(FREQUENCY_HZ), "-p", pid, "-o", file], { stdio: "ignore" });
    const exited = new Promise((r) => perf.once("exit", r));
    await sleep(1500);
    const jobs: Moments[] = [];
    for (let i = 0; i < JOBS; i++) jobs.push(await one(WARM_UP + i));
    perf.kill("SIGINT");
    await Promise.race([exited, sleep(30_000)]);
    const samples = mainThreadSamples(file);
    if (!samples.length) return "perf took no samples (no right to sample workerd?)";
    return PHASES.map((_p, k) => {
      const spans = jobs.map((m) => [m[k] ?? NaN, m[k + 1] ?? NaN] as const);
      const count = spans.reduce((n, [from, to]) => n + countIn(samples, from, to), 0);
      return { cpu: (count / FREQUENCY_HZ / jobs.length) * 1000, wall: median(spans.map(([from, to]) => to - from)) };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function phases(ctx: TracedContext): Promise<void> {
  if (spawnSync("perf", ["--version"]).status !== 0) {
    ctx.report("phases", "skipped: Linux perf is not installed");
    return;
  }
  const sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 5 }) } });
  const receiver = await startReceiver({ secrets: [ctx.secret] });
  // Date.now() of the simulator and the receiver, on this process's monotonic clock.
  const offset = Date.now() - mono();
  const generation = async (tag: string) => {
    const run = (await sim.stats()).lastRunByTag[tag];
    return [(run?.started_at ?? NaN) - offset, (run?.ended_at ?? NaN) - offset] as const;
  };
  const body = (tag: string) => ({ prompt: `[tag:${tag}] bench`, width: 64, height: 64, steps: 1, seed: 1 });
  try {
    const backends = JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url, max_concurrency: 256 }]);
    const gateway = await ctx.withGateway({ BACKENDS: backends }, (base, gw) =>
      measure(gw, async (i) => {
        const tag = `phases-gw-${i}-${Date.now()}`;
        const t0 = mono();
        const res = await fetch(`${base}/v1/jobs`, { method: "POST", headers: ctx.auth, body: JSON.stringify({ ...ctx.job, ...body(tag), webhook: `${receiver.url}/phases` }) });
        const { id } = (await res.json()) as { id: string };
        const hit = await receiver.waitFor((d) => (d.json as { data?: { id?: string } }).data?.id === id, 30_000);
        await sleep(AFTER_MS);
        const [started, ended] = await generation(tag);
        return [t0, started, ended, hit.receivedAt - offset, hit.receivedAt - offset + AFTER_MS];
      }),
    );
    const floor = await ctx.withGateway(
      {},
      (base, gw) =>
        measure(gw, async (i) => {
          const tag = `phases-floor-${i}-${Date.now()}`;
          const t0 = mono();
          const res = await fetch(`${base}/run`, { method: "POST", body: JSON.stringify({ backend: `${sim.url}/sdapi/v1/txt2img`, body: body(tag), webhook: `${receiver.url}/floor` }) });
          const { id } = (await res.json()) as { id: string };
          const hit = await receiver.waitFor((d) => (d.json as { data?: { id?: string } }).data?.id === id, 30_000);
          await sleep(AFTER_MS);
          const [started, ended] = await generation(tag);
          return [t0, started, ended, hit.receivedAt - offset, hit.receivedAt - offset + AFTER_MS];
        }),
      ctx.floorConfig,
    );
    if (typeof gateway === "string" || typeof floor === "string") {
      ctx.report("phases", `skipped: ${typeof gateway === "string" ? gateway : floor}`);
      return;
    }
    const ms = (n: number) => `${n.toFixed(1)} ms`;
    PHASES.forEach((phase, k) => {
      const g = gateway[k];
      const f = floor[k];
      if (!g || !f) return;
      const wall = (x: { wall: number }) => (k === PHASES.length - 1 ? "" : ` / ${ms(x.wall)}`);
      ctx.report(`phases, ${phase}: CPU${k === PHASES.length - 1 ? "" : " / wall p50"}, gateway vs floor`, `${ms(g.cpu)}${wall(g)} vs ${ms(f.cpu)}${wall(f)}`);
    });
  } finally {
    await receiver.close();
    await sim.stop();
  }
}

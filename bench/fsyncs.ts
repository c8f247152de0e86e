/**
 * `npm run bench -- fsyncs`: how many times the local runtime makes storage durable (fsync) for one
 * job, and the time its one thread spends there, for the gateway, the floor Worker's `/run` and its
 * contract floor (`/run-contract`), one after the other. Every Durable Object commit, alarm and R2
 * put under `wrangler dev` is a SQLite commit with its fsyncs, made on the thread that also runs
 * every isolate: what a job's durable steps cost here, whatever the code does between them.
 * `strace` counts them by file, so the code needs no marks. Needs `strace` and the right to trace
 * a process; without them the section says so and measures nothing.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GatewayProcess } from "../test/e2e/support/processes";
import { startSimulatorProcess } from "../test/e2e/support/processes";
import { startReceiver } from "../test/e2e/support/receiver";
import { sleep, workerdPid, type TracedContext } from "./traced";

const JOBS = 20;
const WARM_UP = 15;
/** After each webhook: the job's follow-ups (the slot's release, the index's end report) are counted too. */
const AFTER_MS = 300;

/** The storage a synced file belongs to: a Durable Object class, its alarms, or R2 (the object's own database file and journal counted as one). */
function storageOf(path: string): string {
  const inState = path.split("/v3/")[1] ?? path;
  const [kind, name, file] = inState.split("/");
  if (kind === "r2") return "R2";
  if (kind !== "do" || !name) return "other";
  return file?.startsWith("metadata.sqlite") ? `${name} alarms` : name;
}

/** `JOBS` jobs under strace after `WARM_UP`: fsyncs per job and their time (ms per job), in all and by storage. */
async function measure(gw: GatewayProcess, one: () => Promise<void>): Promise<{ count: number; ms: number; by: Map<string, number> } | string> {
  for (let i = 0; i < WARM_UP; i++) await one();
  const pid = workerdPid(gw);
  if (!pid) return "workerd not found";
  const dir = mkdtempSync(join(tmpdir(), "easel-fsyncs-"));
  const file = join(dir, "strace.txt");
  try {
    const strace = spawn("strace", ["-f", "-y", "-T", "-e", "trace=fsync,fdatasync", "-p", pid, "-o", file], { stdio: "ignore" });
    const exited = new Promise((r) => strace.once("exit", r));
    await sleep(1500);
    for (let i = 0; i < JOBS; i++) await one();
    strace.kill("SIGINT");
    await Promise.race([exited, sleep(30_000)]);
    const by = new Map<string, number>();
    let count = 0;
    let seconds = 0;
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const m = /(?:fsync|fdatasync)\(\d+<([^>]*)>\).*<([\d.]+)>$/.exec(line);
      if (!m?.[1] || !m[2]) continue;
      count++;
      seconds += Number(m[2]);
      by.set(storageOf(m[1]), (by.get(storageOf(m[1])) ?? 0) + 1);
    }
    if (!count) return "strace saw no fsync (no right to trace workerd?)";
    return { count: count / JOBS, ms: (seconds * 1000) / JOBS, by };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function fsyncs(ctx: TracedContext): Promise<void> {
  if (spawnSync("strace", ["-V"]).status !== 0) {
    ctx.report("fsyncs", "skipped: strace is not installed");
    return;
  }
  const sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 5 }) } });
  const receiver = await startReceiver({ secrets: [ctx.secret] });
  const body = { prompt: "bench", width: 64, height: 64, steps: 1, seed: 1 };
  const waitAfter = async (id: string) => {
    await receiver.waitFor((d) => (d.json as { data?: { id?: string } }).data?.id === id, 30_000);
    await sleep(AFTER_MS);
  };
  try {
    const backends = JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url, max_concurrency: 256 }]);
    const gateway = await ctx.withGateway({ BACKENDS: backends }, (base, gw) =>
      measure(gw, async () => {
        const res = await fetch(`${base}/v1/jobs`, { method: "POST", headers: ctx.auth, body: JSON.stringify({ ...ctx.job, ...body, webhook: `${receiver.url}/fsyncs` }) });
        await waitAfter(((await res.json()) as { id: string }).id);
      }),
    );
    const floorRun = (path: string) => (base: string, gw: GatewayProcess) =>
      measure(gw, async () => {
        const res = await fetch(`${base}${path}`, { method: "POST", body: JSON.stringify({ backend: `${sim.url}/sdapi/v1/txt2img`, body, webhook: `${receiver.url}/floor` }) });
        await waitAfter(((await res.json()) as { id: string }).id);
      });
    const floor = await ctx.withGateway({}, floorRun("/run"), ctx.floorConfig);
    const contract = await ctx.withGateway({}, floorRun("/run-contract"), ctx.floorConfig);
    for (const [name, m] of [["gateway", gateway], ["floor Worker", floor], ["contract floor", contract]] as const) {
      if (typeof m === "string") {
        ctx.report(`fsyncs per job, ${name}`, `skipped: ${m}`);
        continue;
      }
      const by = [...m.by].sort((a, b) => b[1] - a[1]).map(([storage, n]) => `${storage} ${(n / JOBS).toFixed(1)}`);
      ctx.report(`fsyncs per job, ${name}: count / ms on the thread`, `${m.count.toFixed(1)} / ${m.ms.toFixed(2)} ms (${by.join(", ")})`);
    }
  } finally {
    await receiver.close();
    await sim.stop();
  }
}

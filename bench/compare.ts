/**
 * `node --import tsx bench/compare.ts <checkout A> <checkout B>`: one tenant's submit throughput of
 * two checkouts of Easel, measured side by side. Both gateways run at once and are loaded at once
 * (10 clients each, several 10 s rounds), so whatever else this shared machine does slows both
 * alike and the ratio stays meaningful. The jobs run (5 ms per image), so what a job costs after
 * intake (the index's status updates included) is in the figure too.
 *
 * `npm run bench:index` (`--without-index`) compares this checkout with a copy of its HEAD that has
 * the job index's calls taken out (intake's `admitJob`, the job's end report): what the index costs.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { startGateway as StartGateway } from "../test/e2e/support/processes";
import { startSimulatorProcess } from "../test/e2e/support/processes";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** A copy of HEAD without the index's calls; each edit must find what it takes out, or this fails. */
function checkoutWithoutIndex(): string {
  const dir = mkdtempSync(join(tmpdir(), "easel-noindex-"));
  execFileSync("sh", ["-c", `git -C "${ROOT}" archive HEAD | tar -x -C "${dir}"`]);
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  const edit = (file: string, from: string, to: string) => {
    const path = join(dir, file);
    const text = readFileSync(path, "utf8");
    if (!text.includes(from)) throw new Error(`bench/compare: ${file} no longer has "${from}"`);
    writeFileSync(path, text.split(from).join(to));
  };
  edit("src/jobs/intake.ts", "admitJob(env, opts.tenant, row)", "Promise.resolve()");
  edit("durable-objects/job/transitions.ts", "room.ctx.waitUntil(reportEnd(room));", "");
  return dir;
}

const withoutIndex = process.argv[2] === "--without-index";
const [dirA, dirB] = withoutIndex ? [ROOT, checkoutWithoutIndex()] : process.argv.slice(2).map((d) => resolve(d));
if (!dirA || !dirB) throw new Error("usage: bench/compare.ts <checkout A> <checkout B> | --without-index");

const KEY = "sk_bench";
const JOB = JSON.stringify({ type: "txt2img", prompt: "bench", width: 64, height: 64, steps: 1 });
const ROUNDS = 5;
const ROUND_MS = 10_000;
const CLIENTS = 10;

async function load(base: string, until: number): Promise<{ ok: number; failed: number }> {
  const counts = { ok: 0, failed: 0 };
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (Date.now() < until) {
        const res = await fetch(`${base}/v1/jobs`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JOB });
        await res.arrayBuffer();
        if (res.status === 202) counts.ok++;
        else counts.failed++;
      }
    }),
  );
  return counts;
}

const sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 5 }) } });
const dirs: string[] = [];
const gateways = await Promise.all(
  [dirA, dirB].map(async (root) => {
    // Each checkout's own support module starts its own code.
    const { startGateway } = (await import(join(root, "test/e2e/support/processes.ts"))) as { startGateway: typeof StartGateway };
    const dir = mkdtempSync(join(tmpdir(), "easel-compare-"));
    dirs.push(dir);
    return startGateway({
      persistDir: dir,
      vars: {
        TENANTS: JSON.stringify({ bench: { api_keys: [KEY], webhook_secrets: [] } }),
        BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url, max_concurrency: 64 }]),
        ALLOW_PRIVATE_URLS: "true",
        URL_SIGNING_SECRET: "bench",
      },
    });
  }),
);
try {
  for (const gw of gateways) await load(gw.url, Date.now() + 3000);
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const until = Date.now() + ROUND_MS;
    const [a, b] = await Promise.all(gateways.map((gw) => load(gw.url, until)));
    const rate = (c: { ok: number }) => (c.ok / ROUND_MS) * 1000;
    ratios.push(rate(a ?? { ok: 0 }) / rate(b ?? { ok: 0 }));
    console.log(`round ${round + 1}: A ${rate(a ?? { ok: 0 }).toFixed(1)}/s (${a?.failed} not accepted), B ${rate(b ?? { ok: 0 }).toFixed(1)}/s (${b?.failed} not accepted), A/B ${ratios.at(-1)?.toFixed(3)}`);
  }
  const sorted = [...ratios].sort((x, y) => x - y);
  const median = sorted[Math.floor(ROUNDS / 2)] ?? NaN;
  console.log(`A/B accepted submits per second, median of ${ROUNDS} rounds: ${median.toFixed(3)}`);
  if (withoutIndex) console.log(`with the job index / without it: ${median.toFixed(3)} (target ≥ 0.90: at most 10% slower)`);
} finally {
  await Promise.all(gateways.map((gw) => gw.stop()));
  await sim.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (withoutIndex) rmSync(dirB, { recursive: true, force: true });
}

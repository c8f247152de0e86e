/**
 * `npm run bench -- scale`: how a backend's line drains when it is long. N jobs wait behind four
 * blockers on one zero-latency backend (`max_concurrency` 4); the blockers are let go (A1111's
 * skip ends each generation normally) and the drain is timed from then to the last job's
 * `completed_at`, as its terminal webhook tells it. Done for 50 and 3,000 jobs, each on a fresh
 * gateway, side by side in one run, with the requests the backend's scheduler object took from
 * jobs (its own counter, read through `GET /v1/backends`), per job.
 */
import type { GatewayProcess } from "../test/e2e/support/processes";
import { startSimulatorProcess } from "../test/e2e/support/processes";
import { startReceiver } from "../test/e2e/support/receiver";

type Tools = {
  auth: Record<string, string>;
  submit: (base: string, body?: object) => Promise<string>;
  job: Record<string, unknown>;
  secret: string;
  withGateway: <T>(vars: Record<string, string>, fn: (url: string, gw: GatewayProcess) => Promise<T>) => Promise<T>;
  report: (name: string, value: string) => void;
  /** Line lengths to drain (`npm run bench -- scale 50,1000,3000`); 50 and 3,000 by default. */
  sizes?: number[];
};
type Backend = { name: string; active: number; waiting: number; requests: number };
type Ended = { id: string; status: string; completed_at: string };

const SLOTS = 4;
const CLIENTS = 20;
/** Long enough to hold the blockers through 3,000 submits; they end by skip, not by this. */
const HOLD_MS = 3_600_000;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

/** Polls `read` every `everyMs` until `ok`, for at most `timeoutMs`; a read that fails is tried again. */
async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await read().catch((err: unknown) => err);
    if (!(v instanceof Error) && ok(v as T)) return v as T;
    if (Date.now() > end) throw new Error(`${what}: still ${v instanceof Error ? v.message : JSON.stringify(v)} after ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

export async function scale(t: Tools): Promise<void> {
  const sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 0 }) } });
  // Each line job's end is read from its webhook, as a client learns it: reading 3,000 jobs back
  // through the list would wake every job object at once, which is not the drain's cost.
  const receiver = await startReceiver({ secrets: [t.secret] });
  const backends = JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url, max_concurrency: SLOTS, models: ["v1-5-pruned-emaonly"] }]);
  const rows: { n: number; seconds: number; rate: number; drainRequests: number; allRequests: number; ok: number }[] = [];
  try {
    for (const n of t.sizes ?? [50, 3000]) {
      const row = await t.withGateway({ BACKENDS: backends }, async (base, gw) => {
        const backend = async (): Promise<Backend> => {
          const res = await fetch(`${base}/v1/backends`, { headers: t.auth });
          if (!res.ok) throw new Error(`GET /v1/backends answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
          const found = ((await res.json()) as { data: Backend[] }).data.find((b) => b.name === "sim");
          if (!found) throw new Error("the bench backend is not listed");
          return found;
        };
        // The log so far (wrangler's start-up warnings): only what follows is the drain's context.
        const started = gw.logs();
        // Four blockers hold every slot while the line is filled.
        await sim.config({ msPerImage: HOLD_MS });
        await Promise.all(Array.from({ length: SLOTS }, () => t.submit(base)));
        await until("blockers running", () => sim.stats(), (s) => s.current >= SLOTS, 30_000);
        await sim.config({ msPerImage: 0 });
        const before = (await until("the backend listed", backend, () => true, 30_000)).requests;
        let next = 0;
        await Promise.all(
          Array.from({ length: CLIENTS }, async () => {
            while (next < n) {
              next++;
              await t.submit(base, { ...t.job, webhook: `${receiver.url}/scale-${n}` });
            }
          }),
        );
        await until(`${n} jobs in line`, backend, (b) => b.waiting === n, 120_000, 500);
        const queued = (await until("the backend listed", backend, () => true, 30_000)).requests;
        // Let the blockers go: A1111's skip ends the current generation with its images, oldest first.
        const t0 = Date.now();
        for (let i = 0; i < SLOTS; i++) {
          await fetch(`${sim.url}/sdapi/v1/skip`, { method: "POST" });
          await sleep(20);
        }
        await until("the line drained", backend, (b) => b.waiting === 0 && b.active === 0, 30 * 60_000, 500);
        const after = (await until("the backend listed", backend, () => true, 30_000)).requests;
        const drained = await until("every line job's webhook", async () => ended(receiver.deliveries, `/scale-${n}`), (e) => e.length >= n, 120_000, 500);
        const ends = drained.map((j) => Date.parse(j.completed_at)).filter((x) => !Number.isNaN(x));
        const seconds = (Math.max(...ends) - t0) / 1000;
        // What the runtime said meanwhile (a restarted object, SQLite out of memory): the figures' context.
        const logs = gw.logs();
        // The log keeps its last 200 lines: once it has rolled over, all of it is read.
        const errors = (logs.startsWith(started) ? logs.slice(started.length) : logs).split("\n").filter((l) => /error|SQLITE|overloaded|restart/i.test(l));
        const kinds = [...new Set(errors.map((l) => l.replace(/run_[a-z2-7]+/g, "run_…").slice(0, 160)))].slice(0, 3);
        if (errors.length) t.report(`  runtime errors in the ${n} drain (first kinds)`, `${errors.length}: ${kinds.join(" | ")}`);
        return {
          n,
          seconds,
          rate: n / seconds,
          drainRequests: (after - queued) / n,
          allRequests: (after - before) / n,
          ok: drained.filter((j) => j.status === "succeeded").length,
        };
      });
      rows.push(row);
      t.report(`drain ${row.n} queued jobs (max_concurrency ${SLOTS}, 0 ms/image)`, `${row.seconds.toFixed(1)} s = ${row.rate.toFixed(1)} jobs/s (${row.ok}/${row.n} succeeded)`);
      t.report(`  scheduler requests per job: drain / queueing + drain`, `${row.drainRequests.toFixed(2)} / ${row.allRequests.toFixed(2)}`);
    }
    const [small, ...larger] = rows;
    for (const large of larger) if (small) t.report(`per-job drain rate, ${large.n} queued / ${small.n} queued (target ≥ 0.8 at 3,000)`, (large.rate / small.rate).toFixed(2));
  } finally {
    await receiver.close();
    await sim.stop();
  }
}

/** The jobs whose terminal webhook came to `path`, each once (a redelivery is the same job). */
function ended(deliveries: { path: string; json: unknown }[], path: string): Ended[] {
  const byId = new Map<string, Ended>();
  for (const d of deliveries) {
    const data = d.path === path ? (d.json as { data?: Partial<Ended> } | undefined)?.data : undefined;
    if (data?.id && data.status && data.completed_at) byId.set(data.id, { id: data.id, status: data.status, completed_at: data.completed_at });
  }
  return [...byId.values()];
}

/**
 * `GET /v1/jobs` end to end: the tenant's index in its Durable Object, read through a real
 * `wrangler dev` gateway, with jobs from /v1 and from a dialect.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, startSimulatorProcess } from "./support/processes";
import { api, waitForJob, waitForStatus, type JobView } from "./support/client";

const TENANTS = JSON.stringify({
  acme: { api_keys: ["sk_acme"], webhook_secrets: [] },
  globex: { api_keys: ["sk_globex"], webhook_secrets: [] },
  initech: { api_keys: ["sk_initech"], webhook_secrets: [] },
});

type Page = { data: JobView[]; next_cursor: string | null };
type ErrorBody = { error: { code: string; details?: { path: string }[] } };

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let stuck: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
let acme: ReturnType<typeof api>;
let globex: ReturnType<typeof api>;

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 5 }) } });
  // One slot that takes a job and never answers: the job there runs, the ones behind it stay queued.
  stuck = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ hang: true }) } });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-list-"));
  const backends = [
    { name: "sim", kind: "a1111", url: sim.url, max_concurrency: 8 },
    { name: "stuck", kind: "a1111", url: stuck.url, max_concurrency: 1, models: ["stuck-only"] },
  ];
  gw = await startGateway({
    persistDir: dir,
    vars: { TENANTS, BACKENDS: JSON.stringify(backends), ALLOW_PRIVATE_URLS: "true", URL_SIGNING_SECRET: "e2e-secret" },
  });
  acme = api(gw.url, "sk_acme");
  globex = api(gw.url, "sk_globex");
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await stuck?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const submit = async (client: ReturnType<typeof api>, body: Record<string, unknown> = {}): Promise<JobView> => {
  const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "list me", width: 64, height: 64, steps: 1, ...body });
  expect(res.status).toBe(202);
  return (await res.json()) as JobView;
};

const page = async (client: ReturnType<typeof api>, query: string): Promise<Page> => {
  const res = await client.get(`/v1/jobs${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Page;
};

describe("GET /v1/jobs", () => {
  it("pages through more jobs than one page while new ones arrive: each seen exactly once, newest first", async () => {
    const before = new Set<string>();
    for (let i = 0; i < 25; i++) before.add((await submit(acme, { track_id: "paging" })).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const p: Page = await page(acme, `?track_id=paging&limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      seen.push(...p.data.map((j) => j.id));
      const created = p.data.map((j) => Date.parse(j.created_at));
      expect(created).toEqual([...created].sort((a, b) => b - a));
      // New jobs keep arriving between pages; they must not shift what is left to see.
      await submit(acme, { track_id: "paging" });
      await submit(acme, { track_id: "paging" });
      cursor = p.next_cursor;
      pages++;
    } while (cursor && pages < 20);
    const old = seen.filter((id) => before.has(id));
    expect(old).toHaveLength(25);
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBeGreaterThanOrEqual(4);
  });

  it("filters by track_id, status, type and creation time, and shows the job's live status", async () => {
    const a = await submit(acme, { track_id: "filter-a" });
    const b = await submit(acme, { track_id: "filter-b" });
    expect((await page(acme, "?track_id=filter-a")).data.map((j) => j.id)).toEqual([a.id]);
    await waitForJob(acme, a.id);
    await waitForJob(acme, b.id);
    const listed = (await page(acme, "?track_id=filter-a")).data[0];
    expect(listed).toMatchObject({ id: a.id, status: "succeeded", track_id: "filter-a" });
    expect(listed?.output[0]?.url).toMatch(/\/v1\/outputs\//);
    expect((await page(acme, "?status=succeeded&track_id=filter-b")).data.map((j) => j.id)).toEqual([b.id]);
    expect((await page(acme, "?status=queued&track_id=filter-b")).data).toEqual([]);
    expect((await page(acme, "?type=img2img&track_id=filter-b")).data).toEqual([]);
    expect((await page(acme, `?track_id=filter-b&created_after=${encodeURIComponent(b.created_at)}`)).data.map((j) => j.id)).toEqual([b.id]);
    expect((await page(acme, `?track_id=filter-b&created_before=${encodeURIComponent(b.created_at)}`)).data).toEqual([]);
  });

  it("shows another tenant none of them", async () => {
    await submit(acme, { track_id: "private" });
    expect((await page(globex, "?track_id=private")).data).toEqual([]);
    expect((await page(globex, "")).data).toEqual([]);
  });

  it("lists a dialect's job under its Easel run id", async () => {
    const res = await fetch(`${gw.url}/api/v3/text2img`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: "sk_acme", prompt: "from modelslab", width: "64", height: "64", samples: "1", num_inference_steps: "1", track_id: "ml-1" }),
    });
    expect(res.status).toBe(200);
    const runId = res.headers.get("x-easel-run-id");
    expect(runId).toMatch(/^run_/);
    expect((await page(acme, "?limit=5")).data.map((j) => j.id)).toContain(runId);
  });

  it("fills a page of running jobs past the queued ones (one state in the index), with no cursor to empty pages", async () => {
    const initech = api(gw.url, "sk_initech");
    const running = await submit(initech, { model: "stuck-only", backend: "stuck" });
    await waitForStatus(initech, running.id, "running");
    const queued: string[] = [];
    for (let i = 0; i < 5; i++) queued.push((await submit(initech, { model: "stuck-only", backend: "stuck" })).id);
    try {
      const first = await page(initech, "?status=running&limit=2");
      expect(first.data.map((j) => j.id)).toEqual([running.id]);
      expect(first.next_cursor).toBeNull();
      const waiting = await page(initech, "?status=queued&limit=3");
      expect(waiting.data.map((j) => j.id)).toEqual(queued.slice(2).reverse());
      const rest = await page(initech, `?status=queued&limit=3&cursor=${waiting.next_cursor}`);
      expect(rest.data.map((j) => j.id)).toEqual(queued.slice(0, 2).reverse());
      expect(rest.next_cursor).toBeNull();
    } finally {
      for (const id of [...queued, running.id]) await initech.post(`/v1/jobs/${id}/cancel`);
    }
  });

  it("answers a bad limit, status, date or cursor with a 422 naming it", async () => {
    for (const [query, field] of [
      ["?limit=0", "limit"],
      ["?limit=101", "limit"],
      ["?limit=0x10", "limit"],
      ["?status=done", "status"],
      ["?created_after=yesterday", "created_after"],
      // A day the calendar does not have, which Date.parse would roll over into March.
      ["?created_before=2020-02-30", "created_before"],
      ["?cursor=bm90LWEtY3Vyc29y", "cursor"],
    ] as const) {
      const res = await acme.get(`/v1/jobs${query}`);
      expect(res.status, query).toBe(422);
      expect(((await res.json()) as ErrorBody).error.details?.map((d) => d.path)).toContain(field);
    }
    expect((await fetch(`${gw.url}/v1/jobs`)).status).toBe(401);
  });
});

/**
 * The ComfyUI front with a long queue: more prompts than GET /queue reads from their jobs, held
 * behind one backend busy for minutes. ComfyUI lists its whole queue, and the real
 * `@saintno/comfyui-sdk` takes a prompt missing from it (with no history yet) for a lost one.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CallWrapper, ComfyApi, PromptBuilder } from "@saintno/comfyui-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { txt2img } from "./support/comfyui";
import { startGateway, startSimulatorProcess } from "./support/processes";

const KEY = "sk_comfy_queue";
/** Past the 200 prompts the front once listed at most. */
const QUEUED = 210;

type Item = [number, string, Record<string, unknown>, Record<string, unknown>, string[]];
type Queue = { queue_running: Item[]; queue_pending: Item[] };

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
const clients: ComfyApi[] = [];
const ids: string[] = [];
/** The prompt holding the backend. */
let running = "";

const auth = { authorization: `Bearer ${KEY}` };
const post = (path: string, body: unknown) => fetch(gw.url + path, { method: "POST", headers: auth, body: JSON.stringify(body) });
const get = async <T>(path: string): Promise<T> => (await (await fetch(gw.url + path, { headers: auth })).json()) as T;
const queueIds = (q: Queue) => [...q.queue_running, ...q.queue_pending].map((item) => item[1]);

beforeAll(async () => {
  // One slot, each image ten minutes: the first prompt holds the backend, every other one waits.
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 600_000 }) } });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-comfyui-queue-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ a: { api_keys: [KEY], webhook_secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] } }),
      BACKENDS: JSON.stringify([{ name: "comfy", kind: "comfyui", url: sim.url, max_concurrency: 1 }]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
  // Twenty at a time, each numbered in order of its answer.
  const numbered: { id: string; number: number }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < QUEUED) {
        const n = next++;
        const res = (await (await post("/prompt", { prompt: txt2img(`q${n}`), client_id: "filler" })).json()) as { prompt_id: string; number: number };
        numbered.push({ id: res.prompt_id, number: res.number });
      }
    }),
  );
  ids.push(...numbered.sort((a, b) => a.number - b.number).map((p) => p.id));
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.destroy();
  await gw?.stop();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a queue longer than 200 prompts", () => {
  it("lists every prompt in GET /queue, the last one too, and counts them all in GET /prompt", async () => {
    const queue = await get<Queue>("/queue");
    expect(queue.queue_running).toHaveLength(1);
    running = queue.queue_running[0]?.[1] ?? "";
    expect(queue.queue_pending).toHaveLength(QUEUED - 1);
    expect(new Set(queueIds(queue))).toEqual(new Set(ids));
    expect(queueIds(queue)).toContain(ids.at(-1));
    // The oldest come with their graph; a later one with its number, id and client, as its object knows them.
    const pending = queue.queue_pending;
    expect(Object.keys(pending[0]?.[2] ?? {})).toContain("9");
    expect(pending.at(-1)).toEqual([QUEUED, ids.at(-1), {}, { client_id: "filler" }, []]);
    expect(pending.map((item) => item[0])).toEqual([...pending.map((item) => item[0])].sort((a, b) => a - b));
    expect((await get<{ exec_info: { queue_remaining: number } }>("/prompt")).exec_info.queue_remaining).toBe(QUEUED);
  });

  it("keeps an SDK call for a prompt behind them waiting, through the status messages that make it read GET /queue", { timeout: 60_000 }, async () => {
    const api = new ComfyApi(gw.url, undefined, { credentials: { type: "bearer_token", token: KEY } });
    clients.push(api);
    api.init();
    await api.waitForReady();
    const graph = Object.fromEntries(Object.entries(txt2img("late")).map(([id, n]) => [id, { ...n, _meta: { title: n.class_type } }]));
    const failures: string[] = [];
    let pendingId = "";
    let statuses = 0;
    api.on("status", () => pendingId && statuses++);
    void new CallWrapper(api, new PromptBuilder(graph, [], ["images"]).setOutputNode("images", "9"))
      .onPending((id) => (pendingId = id ?? ""))
      .onFailed((err) => failures.push(`${err.name}: ${err.message}`))
      .run();
    // The object says the queue's length every 4 s: each status has the call look for its prompt.
    for (let i = 0; i < 150 && statuses < 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(statuses).toBeGreaterThanOrEqual(2);
    // Its own read of GET /queue after each one has had time to come back.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(failures).toEqual([]);
    expect(queueIds(await get<Queue>("/queue"))).toContain(pendingId);
    ids.push(pendingId);
  });

  it("takes every waiting prompt out with POST /queue {clear}, and the running one with POST /interrupt", { timeout: 60_000 }, async () => {
    expect((await post("/queue", { clear: true })).status).toBe(200);
    const cleared = await get<Queue>("/queue");
    expect(cleared.queue_pending).toEqual([]);
    expect(queueIds(cleared)).toEqual([running]);
    expect((await get<{ exec_info: { queue_remaining: number } }>("/prompt")).exec_info.queue_remaining).toBe(1);
    // Each waiting prompt's job is canceled, the last one too.
    expect((await get<Record<string, { status: { status_str: string } }>>(`/history/${ids.at(-1)}`))[ids.at(-1) ?? ""]?.status.status_str).toBe("error");
    expect((await post("/interrupt", {})).status).toBe(200);
    expect(queueIds(await get<Queue>("/queue"))).toEqual([]);
    expect((await get<{ exec_info: { queue_remaining: number } }>("/prompt")).exec_info.queue_remaining).toBe(0);
  });
});

/**
 * The ComfyUI front where Easel runs one client's prompts side by side (two backends), which a
 * ComfyUI server never does: the real `@saintno/comfyui-sdk` must still see each of its calls end
 * as it would on one ComfyUI.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CallWrapper, ComfyApi, PromptBuilder } from "@saintno/comfyui-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { txt2img, type Graph } from "./support/comfyui";
import { startGateway, startSimulatorProcess } from "./support/processes";

const KEY = "sk_comfy_parallel";

let sims: Awaited<ReturnType<typeof startSimulatorProcess>>[] = [];
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
const clients: ComfyApi[] = [];

beforeAll(async () => {
  // Two serial ComfyUI servers, one slot each: two prompts of one client run at once.
  sims = await Promise.all([1, 2].map(() => startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 1500 }) } })));
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-comfyui-parallel-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ a: { api_keys: [KEY], webhook_secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] } }),
      BACKENDS: JSON.stringify(sims.map((s, i) => ({ name: `comfy${i}`, kind: "comfyui", url: s.url, max_concurrency: 1 }))),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await gw?.stop();
  for (const s of sims) await s.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The example graph with the `_meta.title` the SDK's types ask for, making `batch` images (1.5 s each). */
function batched(prefix: string, batch: number) {
  const g: Graph = txt2img(prefix, (graph) => Object.assign((graph["5"] as Graph[string]).inputs, { batch_size: batch }));
  return Object.fromEntries(Object.entries(g).map(([id, n]) => [id, { ...n, _meta: { title: n.class_type } }]));
}

describe("one SDK client's prompts running at once", () => {
  it("ends each CallWrapper with its own outputs when a short prompt ends while a long one runs", { timeout: 60_000 }, async () => {
    const api = new ComfyApi(gw.url, undefined, { credentials: { type: "bearer_token", token: KEY } });
    clients.push(api);
    api.init();
    await api.waitForReady();
    const seen: { type: string; prompt_id: string }[] = [];
    api.on("all", (ev) => {
      const { type, data } = ev.detail as { type: string; data: { prompt_id?: string } };
      if (type !== "status" && type !== "progress" && data.prompt_id) seen.push({ type, prompt_id: data.prompt_id });
    });
    const run = (prefix: string, batch: number) => {
      const failures: string[] = [];
      const progressOf: string[] = [];
      let id = "";
      let started = false;
      const call = new CallWrapper(api, new PromptBuilder(batched(prefix, batch), [], ["images"]).setOutputNode("images", "9"))
        .onPending((p) => (id = p ?? ""))
        .onStart(() => (started = true))
        .onProgress((p) => progressOf.push(p.prompt_id))
        .onFailed((err) => failures.push(`${err.name}: ${err.message}`))
        .run();
      return call.then((result) => ({ result, failures, id, started, progressOf }));
    };
    // The long one (4 images, 6 s) first, so it holds one backend while the short one (1.5 s) runs on the other.
    const [long, short] = await Promise.all([run("long", 4), run("short", 1)]);
    expect(short.failures).toEqual([]);
    expect(long.failures).toEqual([]);
    // The SDK's onStart waits for its prompt's first progress; and it takes any progress for its
    // own, so while both run each hears at most the other's first.
    expect([long.started, short.started]).toEqual([true, true]);
    for (const [mine, other] of [[long, short], [short, long]] as const) expect(mine.progressOf.filter((p) => p === other.id).length).toBeLessThanOrEqual(1);
    expect((short.result as { images: { images: unknown[] } }).images.images).toHaveLength(1);
    expect((long.result as { images: { images: unknown[] } }).images.images).toHaveLength(4);
    // Each call is over at its last output; the closing messages follow it.
    for (let i = 0; i < 50 && seen.filter((m) => m.type === "execution_success").length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    // The short one ran and saved first, yet its execution_success came after the long one's output, as on one ComfyUI.
    const at = (type: string, id: string) => seen.findIndex((m) => m.type === type && m.prompt_id === id);
    expect(at("executed", short.id)).toBeLessThan(at("executed", long.id));
    expect(at("execution_success", short.id)).toBeGreaterThan(at("executed", long.id));
    expect(seen.filter((m) => m.type === "execution_success").map((m) => m.prompt_id).sort()).toEqual([long.id, short.id].sort());
  });
});

describe("the history of prompts that end out of order", () => {
  const auth = { authorization: `Bearer ${KEY}` };
  const get = async (path: string) => (await fetch(gw.url + path, { headers: auth })).json() as Promise<Record<string, { status: { status_str: string } }>>;
  const status = async (path: string) => (await fetch(gw.url + path, { headers: auth })).status;
  const post = (path: string, body: unknown) => fetch(gw.url + path, { method: "POST", headers: auth, body: JSON.stringify(body) });
  const queue = async (prefix: string, batch: number) => ((await (await post("/prompt", { prompt: batched(prefix, batch) })).json()) as { prompt_id: string }).prompt_id;
  const ended = async (id: string) => {
    for (let i = 0; i < 200 && !(await get(`/history/${id}`))[id]; i++) await new Promise((r) => setTimeout(r, 100));
  };

  it("lists the last prompts to end, in the order they ended; POST /history takes them out of it, and their jobs stay", { timeout: 60_000 }, async () => {
    const long = await queue("h-long", 3);
    const short = await queue("h-short", 1);
    await ended(short);
    // While the long one runs, the latest entry is the short one, though a later prompt exists.
    expect(Object.keys(await get("/history?max_items=1"))).toEqual([short]);
    await ended(long);
    // As ComfyUI keeps its history: in the order the prompts ended, the last N.
    expect(Object.keys(await get("/history?max_items=1"))).toEqual([long]);
    expect(Object.keys(await get("/history?max_items=2"))).toEqual([short, long]);

    expect((await post("/history", { delete: [short] })).status).toBe(200);
    expect(await status(`/history/${short}`)).toBe(404);
    expect(Object.keys(await get("/history")).filter((id) => id === short || id === long)).toEqual([long]);
    expect((await get(`/v1/jobs/${short}`)).status).toBe("succeeded");
    expect((await post("/history", { clear: true })).status).toBe(200);
    expect(await get("/history")).toEqual({});
    expect(await status(`/history/${long}`)).toBe(404);
    expect((await get(`/v1/jobs/${long}`)).status).toBe("succeeded");
    // The SDK's freeMemory: ComfyUI's 200, nothing to do on backends every tenant shares.
    expect((await post("/free", { unload_models: true, free_memory: true })).status).toBe(200);
  });
});

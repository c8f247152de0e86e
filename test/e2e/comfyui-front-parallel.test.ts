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
      let id = "";
      const call = new CallWrapper(api, new PromptBuilder(batched(prefix, batch), [], ["images"]).setOutputNode("images", "9"))
        .onPending((p) => (id = p ?? ""))
        .onFailed((err) => failures.push(`${err.name}: ${err.message}`))
        .run();
      return call.then((result) => ({ result, failures, id }));
    };
    // The long one (4 images, 6 s) first, so it holds one backend while the short one (1.5 s) runs on the other.
    const [long, short] = await Promise.all([run("long", 4), run("short", 1)]);
    expect(short.failures).toEqual([]);
    expect(long.failures).toEqual([]);
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

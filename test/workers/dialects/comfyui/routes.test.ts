/** ComfyUI's prompt routes inside the Worker: auth, ComfyUI's refusals, and reading what is not the tenant's. */
import { env, exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ComfySocket } from "../../../../durable-objects/comfy-socket";
import { basic, call } from "../support";

const ACME = { authorization: "Bearer sk_acme_1" };
const GLOBEX = { authorization: "Bearer sk_globex_1" };
const r2Keys = async (prefix: string) => (await env.IMAGES.list({ prefix })).objects.map((o) => o.key);
const comfyObjects = env.JOB_SUBSCRIBERS as unknown as DurableObjectNamespace<ComfySocket>;

describe("ComfyUI auth", () => {
  it("takes the key as Bearer, as basic auth's password or as ?token=, at the root and under /api/", { timeout: 20_000 }, async () => {
    for (const [path, headers] of [
      ["/prompt", ACME],
      ["/api/prompt", basic("anyone", "sk_acme_1")],
      ["/prompt?token=sk_acme_1", {}],
    ] as const) {
      const res = await call(path, { headers });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ exec_info: { queue_remaining: 0 } });
    }
  });

  it("answers 401 without a valid key, in ComfyUI's error shape", async () => {
    for (const headers of [{}, { authorization: "Bearer nope" }] as Record<string, string>[]) {
      const res = await call("/api/prompt", { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { type: "unauthorized", message: expect.any(String) } });
    }
    expect((await call("/ws?token=nope", { headers: { upgrade: "websocket" } })).status).toBe(401);
  });
});

describe("POST /prompt refusals", () => {
  it("answers ComfyUI's 400 for a missing prompt, a prompt that is not a graph, and a bad prompt_id", async () => {
    const none = await call("/prompt", { headers: ACME, body: { client_id: "c1" } });
    expect(none.status).toBe(400);
    expect(await none.json()).toEqual({ error: { type: "no_prompt", message: "No prompt provided", details: "No prompt provided", extra_info: {} }, node_errors: {} });
    const list = await call("/prompt", { headers: ACME, body: { prompt: [1, 2] } });
    expect(list.status).toBe(400);
    expect(await list.json()).toMatchObject({ error: { type: "invalid_prompt" }, node_errors: {} });
    const id = await call("/prompt", { headers: ACME, body: { prompt: { "1": { class_type: "SaveImage", inputs: {} } }, prompt_id: "../x" } });
    expect(id.status).toBe(400);
    expect(await id.json()).toMatchObject({ error: { type: "invalid_prompt_id" } });
  });

  it("reads the body as JSON whatever the Content-Type, and names each bad node in node_errors", async () => {
    const graph = { "3": { class_type: "KSampler", inputs: { model: ["4", 0] } }, "9": { class_type: "SaveImage", inputs: { images: ["3", 0] } } };
    const res = await exports.default.fetch(new Request("http://gateway.test/prompt", { method: "POST", headers: { ...ACME, "content-type": "text/plain" }, body: JSON.stringify({ prompt: graph }) }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { type: string }; node_errors: Record<string, { class_type: string; errors: { message: string }[] }> };
    expect(body.error.type).toBe("prompt_outputs_failed_validation");
    expect(Object.keys(body.node_errors)).toEqual(["3"]);
    // A link to a node that is not there: ComfyUI's KeyError inside the check of what feeds output 9.
    expect(body.node_errors["3"]).toMatchObject({ class_type: "KSampler", dependent_outputs: ["9"], errors: [{ type: "exception_during_inner_validation", message: expect.stringContaining('"4"') }] });
  });

  it("refuses a LoadImage name that could leave the tenant's uploads, under its node", async () => {
    const graph = { "1": { class_type: "LoadImage", inputs: { image: "../globex/cat.png" } }, "2": { class_type: "SaveImage", inputs: { images: ["1", 0] } } };
    const res = await call("/prompt", { headers: ACME, body: { prompt: graph } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: "prompt_outputs_failed_validation" }, node_errors: { "1": { class_type: "LoadImage", errors: [{ details: "prompt.1.inputs.image" }] } } });
  });

  it("answers prompt_no_outputs for a graph that saves nothing", async () => {
    const res = await call("/prompt", { headers: ACME, body: { prompt: { "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "x.safetensors" } } } } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: "prompt_no_outputs", message: "Prompt has no outputs" }, node_errors: {} });
  });
});

describe("reading unknown prompts", () => {
  it("answers 404 for a prompt id that is not the tenant's, storing nothing (no R2 object, no table in the tenant's object)", async () => {
    const before = await r2Keys("");
    for (const id of ["0b0a4b36-6a4c-4a5e-9a4e-3f1a2b3c4d5e", "run_abcdefghijklmnopqrstuvwxyzabcdefghijklmn", "nope", "x".repeat(300)]) {
      const res = await call(`/history/${id}`, { headers: GLOBEX });
      expect([res.status, await res.json()], id).toEqual([404, { error: expect.objectContaining({ type: "not_found" }), node_errors: {} }]);
    }
    expect(await r2Keys("")).toEqual(before);
    const tables = await runInDurableObject(comfyObjects.get(comfyObjects.idFromName("comfyui:globex")), (_o, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((t) => t.name),
    );
    expect(tables).not.toContain("prompts");
  });
});

describe("the tenant's queue", () => {
  it("is empty for a tenant with no prompts, and cancelling or interrupting nothing is no error", async () => {
    expect(await (await call("/queue", { headers: ACME })).json()).toEqual({ queue_running: [], queue_pending: [] });
    expect(await (await call("/history?max_items=5", { headers: ACME })).json()).toEqual({});
    expect((await call("/queue", { headers: ACME, body: { delete: ["0b0a4b36-6a4c-4a5e-9a4e-3f1a2b3c4d5e"] } })).status).toBe(200);
    expect((await call("/queue", { headers: ACME, body: { clear: true } })).status).toBe(200);
    expect((await call("/api/interrupt", { method: "POST", headers: ACME })).status).toBe(200);
    // The SDK's freeMemory and history clearing: ComfyUI's 200, with nothing to do here.
    expect((await call("/free", { headers: ACME, body: { unload_models: true, free_memory: true } })).status).toBe(200);
    expect((await call("/api/history", { headers: ACME, body: { clear: true } })).status).toBe(200);
    expect((await call("/history", { headers: ACME, body: { delete: ["0b0a4b36-6a4c-4a5e-9a4e-3f1a2b3c4d5e"] } })).status).toBe(200);
  });
});

describe("GET /prompt's queue_remaining", () => {
  it("leaves out a prompt that is over though its end notice never came (here: its job never came), as a client polls it for 0", async () => {
    const globexSockets = comfyObjects.get(comfyObjects.idFromName("comfyui:globex"));
    const before = ((await (await call("/prompt", { headers: GLOBEX })).json()) as { exec_info: { queue_remaining: number } }).exec_info.queue_remaining;
    await globexSockets.reserve({ prompt_id: "never-made", run_id: `run_${"q".repeat(39)}`, client_id: null });
    // Numbered an hour ago: a job that does not exist by now never will.
    await runInDurableObject(globexSockets, (_o, state) => void state.storage.sql.exec("UPDATE prompts SET created_at = ? WHERE prompt_id = 'never-made'", Date.now() - 3_600_000));
    const after = (await (await call("/prompt", { headers: GLOBEX })).json()) as { exec_info: { queue_remaining: number } };
    expect(after.exec_info.queue_remaining).toBe(before);
  });
});

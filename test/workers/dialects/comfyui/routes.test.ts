/** The ComfyUI front inside the Worker: its auth, its error shape, and the routes that need no backend. */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { basic, call, tinyPng } from "../support";

const ACME = { authorization: "Bearer sk_acme_1" };
const GLOBEX = { authorization: "Bearer sk_globex_1" };

const png = () => Uint8Array.from(atob(tinyPng(8, 8)), (ch) => ch.charCodeAt(0));

async function upload(headers: Record<string, string>, fields: Record<string, string>, name = "cat.png", path = "/upload/image") {
  const form = new FormData();
  form.append("image", new File([png()], name, { type: "image/png" }));
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return exports.default.fetch(new Request(`http://gateway.test${path}`, { method: "POST", headers, body: form }));
}

const r2Keys = async (prefix: string) => (await env.IMAGES.list({ prefix })).objects.map((o) => o.key);

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
    expect(body.node_errors["3"]).toMatchObject({ class_type: "KSampler", dependent_outputs: [], errors: [{ type: "invalid_input", message: expect.stringContaining('"4"') }] });
  });

  it("answers prompt_no_outputs for a graph that saves nothing", async () => {
    const res = await call("/prompt", { headers: ACME, body: { prompt: { "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "x.safetensors" } } } } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: "prompt_no_outputs", message: "Prompt has no outputs" }, node_errors: {} });
  });
});

describe("uploads and /view", () => {
  it("keeps an upload for its tenant only, renames a clash unless overwrite, and serves it back by /view", async () => {
    const first = await upload(ACME, { subfolder: "pets", type: "input" });
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ name: "cat.png", subfolder: "pets", type: "input" });
    const again = await upload(ACME, { subfolder: "pets", overwrite: "false" }, "cat.png", "/api/upload/image");
    expect(await again.json()).toEqual({ name: "cat (1).png", subfolder: "pets", type: "input" });
    const replaced = await upload(ACME, { subfolder: "pets", overwrite: "true" });
    expect(await replaced.json()).toEqual({ name: "cat.png", subfolder: "pets", type: "input" });

    const view = await call("/view?filename=cat.png&subfolder=pets&type=input", { headers: ACME });
    expect(view.status).toBe(200);
    expect(view.headers.get("content-type")).toBe("image/png");
    expect(new Uint8Array(await view.arrayBuffer())).toEqual(png());
    expect((await call("/view?filename=cat.png&subfolder=pets&type=input", { headers: GLOBEX })).status).toBe(404);
  });

  it("refuses names and subfolders that could leave the tenant's place, before writing anything", async () => {
    const before = await r2Keys("comfy/");
    for (const [fields, name, field] of [
      [{ subfolder: "../globex" }, "cat.png", "subfolder"],
      [{ subfolder: "a//b" }, "cat.png", "subfolder"],
      [{ subfolder: "%2e%2e" }, "cat.png", "subfolder"],
      [{ subfolder: "a\\b" }, "cat.png", "subfolder"],
      [{ type: "secret" }, "cat.png", "type"],
      [{}, "..", "image"],
    ] as const) {
      const res = await upload(ACME, fields, name);
      expect(res.status, JSON.stringify(fields)).toBe(422);
      expect(JSON.stringify(await res.json())).toContain(field);
    }
    expect(await r2Keys("comfy/")).toEqual(before);
    for (const q of ["filename=..&type=input", "filename=cat.png&subfolder=../x&type=input", "filename=a%5Cb.png&type=input"]) {
      expect((await call(`/view?${q}`, { headers: ACME })).status, q).toBe(422);
    }
  });

  it("refuses a file that is not an image", async () => {
    const form = new FormData();
    form.append("image", new File([new TextEncoder().encode("hello")], "note.png"));
    const res = await exports.default.fetch(new Request("http://gateway.test/upload/image", { method: "POST", headers: ACME, body: form }));
    expect(res.status).toBe(422);
  });
});

describe("reading unknown prompts and files", () => {
  it("answers 404 for a prompt id or output name that is not the tenant's, storing nothing", async () => {
    const before = await r2Keys("");
    for (const id of ["0b0a4b36-6a4c-4a5e-9a4e-3f1a2b3c4d5e", "run_abcdefghijklmnopqrstuvwxyzabcdefghijklmn", "nope"]) {
      const res = await call(`/history/${id}`, { headers: ACME });
      expect(res.status, id).toBe(404);
    }
    expect((await call("/view?filename=run_abcdefghijklmnopqrstuvwxyzabcdefghijklmn_00000_.png", { headers: ACME })).status).toBe(404);
    expect(await r2Keys("")).toEqual(before);
  });
});

describe("the server's own routes", () => {
  it("lists CheckpointLoaderSimple, answers {} for a class it does not know, and ComfyUI's other shapes", async () => {
    const info = (await (await call("/object_info", { headers: ACME })).json()) as Record<string, { input: { required: { ckpt_name: [string[]] } } }>;
    expect(Array.isArray(info.CheckpointLoaderSimple?.input.required.ckpt_name[0])).toBe(true);
    expect(await (await call("/api/object_info/Crystools%20Monitor", { headers: ACME })).json()).toEqual({});
    expect(Object.keys((await (await call("/object_info/CheckpointLoaderSimple", { headers: ACME })).json()) as object)).toEqual(["CheckpointLoaderSimple"]);
    expect(Array.isArray(await (await call("/models/checkpoints", { headers: ACME })).json())).toBe(true);
    expect(await (await call("/system_stats", { headers: ACME })).json()).toMatchObject({ system: { os: expect.any(String) }, devices: [] });
    expect(await (await call("/embeddings", { headers: ACME })).json()).toEqual([]);
    expect(await (await call("/api/extensions", { headers: ACME })).json()).toEqual([]);
    expect(await (await call("/queue", { headers: ACME })).json()).toEqual({ queue_running: [], queue_pending: [] });
    expect(await (await call("/history?max_items=5", { headers: ACME })).json()).toEqual({});
  });
});

describe("GET /ws", () => {
  it("is a WebSocket that says the queue's state on connect, with the client's id", async () => {
    expect((await call("/ws?clientId=c1", { headers: ACME })).status).toBe(426);
    const res = await call("/ws?clientId=c1&token=sk_acme_1", { headers: { upgrade: "websocket" } });
    expect(res.status).toBe(101);
    const ws = res.webSocket;
    if (!ws) throw new Error("no socket");
    const first = new Promise<string>((resolve) => ws.addEventListener("message", (e) => resolve(String(e.data)), { once: true }));
    ws.accept();
    expect(JSON.parse(await first)).toEqual({ type: "status", data: { status: { exec_info: { queue_remaining: 0 } }, sid: "c1" } });
    ws.close();
  });
});

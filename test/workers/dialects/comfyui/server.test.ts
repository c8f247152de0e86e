/** The rest of ComfyUI's surface inside the Worker: uploads and /view within the tenant, the socket, and the server's own routes. */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, tinyPng } from "../support";

const ACME = { authorization: "Bearer sk_acme_1" };
const GLOBEX = { authorization: "Bearer sk_globex_1" };

const png = () => Uint8Array.from(atob(tinyPng(8, 8)), (ch) => ch.charCodeAt(0));

async function upload(headers: Record<string, string>, fields: Record<string, string>, name = "cat.png", path = "/upload/image", bytes = png()) {
  const form = new FormData();
  form.append("image", new File([bytes], name, { type: "image/png" }));
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return exports.default.fetch(new Request(`http://gateway.test${path}`, { method: "POST", headers, body: form }));
}

const r2Keys = async (prefix: string) => (await env.IMAGES.list({ prefix })).objects.map((o) => o.key);

describe("uploads and /view", () => {
  it("keeps an upload for its tenant only, renames a clash of other bytes unless overwrite (the same bytes keep their name), and serves it back by /view", { timeout: 20_000 }, async () => {
    const first = await upload(ACME, { subfolder: "pets", type: "input" });
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ name: "cat.png", subfolder: "pets", type: "input" });
    const same = await upload(ACME, { subfolder: "pets", overwrite: "false" }, "cat.png", "/api/upload/image");
    expect(await same.json()).toEqual({ name: "cat.png", subfolder: "pets", type: "input" });
    const other = Uint8Array.from(atob(tinyPng(9, 9)), (ch) => ch.charCodeAt(0));
    const again = await upload(ACME, { subfolder: "pets", overwrite: "false" }, "cat.png", "/api/upload/image", other);
    expect(await again.json()).toEqual({ name: "cat (1).png", subfolder: "pets", type: "input" });
    expect(await (await upload(ACME, { subfolder: "pets" }, "cat.png", "/upload/image", other)).json()).toEqual({ name: "cat (1).png", subfolder: "pets", type: "input" });
    // Uploads of one name at once each get a name of their own, and each name keeps its bytes.
    const sizes = [10, 11, 12, 13];
    const names = await Promise.all(sizes.map(async (n) => ((await (await upload(ACME, {}, "race.png", "/upload/image", Uint8Array.from(atob(tinyPng(n, n)), (ch) => ch.charCodeAt(0)))).json()) as { name: string }).name));
    expect(new Set(names).size).toBe(sizes.length);
    for (const [i, name] of names.entries()) {
      const got = new Uint8Array(await (await call(`/view?filename=${encodeURIComponent(name)}&type=input`, { headers: ACME })).arrayBuffer());
      expect(new DataView(got.buffer).getUint32(16), name).toBe(sizes[i]);
    }
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
    // A NUL in the file name, as a raw multipart body carries it: the form cannot be read, and says so.
    const boundary = "easel-test-boundary";
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="evil\u0000.png"\r\nContent-Type: image/png\r\n\r\n`;
    const body = new Uint8Array([...new TextEncoder().encode(head), ...png(), ...new TextEncoder().encode(`\r\n--${boundary}--\r\n`)]);
    const nul = await exports.default.fetch(new Request("http://gateway.test/upload/image", { method: "POST", headers: { ...ACME, "content-type": `multipart/form-data; boundary=${boundary}` }, body }));
    expect(nul.status).toBe(422);
    expect(JSON.stringify(await nul.json())).toContain("multipart/form-data body that can be read");
    expect(await r2Keys("comfy/")).toEqual(before);
    // A read is answered as ComfyUI's /view answers it: 400 for a bad name or type, 403 for a subfolder outside.
    for (const [q, status] of [
      ["filename=..&type=input", 400],
      ["filename=%2Fetc%2Fpasswd&type=output", 400],
      ["filename=a%5Cb.png&type=input", 400],
      ["filename=cat.png&type=bogus", 400],
      ["filename=cat.png&subfolder=../x&type=input", 403],
      ["filename=cat.png&subfolder=..%2F..%2Fetc&type=output", 403],
    ] as const) {
      expect((await call(`/view?${q}`, { headers: ACME })).status, q).toBe(status);
    }
  });

  it("refuses a file that is not an image", async () => {
    const form = new FormData();
    form.append("image", new File([new TextEncoder().encode("hello")], "note.png"));
    const res = await exports.default.fetch(new Request("http://gateway.test/upload/image", { method: "POST", headers: ACME, body: form }));
    expect(res.status).toBe(422);
  });
});

describe("reading unknown files", () => {
  it("answers 404 for an output name of a job that is not the tenant's", async () => {
    const before = await r2Keys("");
    expect((await call("/view?filename=run_abcdefghijklmnopqrstuvwxyzabcdefghijklmn_00000_.png", { headers: ACME })).status).toBe(404);
    expect((await call("/view?filename=nothing.png&type=input", { headers: ACME })).status).toBe(404);
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
  });
});

describe("GET /ws", () => {
  it("is a WebSocket that says the queue's state on connect, with the client's id", async () => {
    expect((await call("/ws?clientId=c1", { headers: ACME })).status).toBe(426);
    expect((await call(`/ws?clientId=${"x".repeat(201)}&token=sk_acme_1`, { headers: { upgrade: "websocket" } })).status).toBe(422);
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

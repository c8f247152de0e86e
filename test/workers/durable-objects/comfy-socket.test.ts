/** The tenant's ComfyUI object: prompt ids and numbers, and each job's news on the sockets of its prompt's client only. */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ComfySocket } from "../../../durable-objects/comfy-socket";
import { ACTIVE_PAGE_MAX, CLIENT_ID_HEADER } from "../../../src/contracts/prompts";
import type { JobNotice } from "../../../src/contracts/job-feed";
import { RUN_ID, snapshot } from "../dialects/support";

const objects = env.JOB_SUBSCRIBERS as unknown as DurableObjectNamespace<ComfySocket>;
const objectFor = (name: string) => objects.get(objects.idFromName(name));

/** A socket of `clientId` on the object, collecting what it is sent. */
async function connect(name: string, clientId: string) {
  const res = await objectFor(name).fetch(new Request("http://o/ws", { headers: { upgrade: "websocket", [CLIENT_ID_HEADER]: clientId } }));
  const ws = res.webSocket;
  if (!ws) throw new Error("no socket");
  const got: { type: string; data: Record<string, unknown> }[] = [];
  const frames: number[][] = [];
  ws.binaryType = "arraybuffer";
  ws.addEventListener("message", (e) => {
    if (e.data instanceof ArrayBuffer) frames.push([...new Uint8Array(e.data)]);
    else got.push(JSON.parse(String(e.data)) as { type: string; data: Record<string, unknown> });
  });
  ws.accept();
  return { ws, got, frames };
}

const event = (seq: number, type: string, data: Record<string, unknown> = {}) => ({ seq, type, at: "2026-05-04T10:20:31.000Z", data });

/** A running ComfyUI job's snapshot under run id `id`. */
function runningJob(id: string) {
  const s = snapshot({ dialect: "comfyui", status: "running" });
  return { ...s, job: { ...s.job, id } };
}

/** Lets the sockets' messages arrive (a round trip to the object after the sends). */
const settle = (name: string) => objectFor(name).latest(1);

describe("ComfySocket prompts", () => {
  it("numbers a tenant's prompts, refuses a prompt id twice and gives one back", { timeout: 20_000 }, async () => {
    const o = objectFor("comfyui:numbers");
    expect(await o.reserve({ prompt_id: "p1", run_id: "r1", client_id: null })).toEqual({ ok: true, number: 1 });
    expect(await o.reserve({ prompt_id: "p2", run_id: "r2", client_id: "c" })).toEqual({ ok: true, number: 2 });
    expect(await o.reserve({ prompt_id: "p1", run_id: "r3", client_id: null })).toEqual({ ok: false });
    await o.drop("p2");
    expect(await o.lookup("p2")).toBeNull();
    expect((await o.latest(10)).map((p) => p.prompt_id)).toEqual(["p1"]);
    expect((await o.activePage({ after: 0, limit: 10 })).prompts.map((p) => p.state)).toEqual(["queued"]);
    expect(await o.settle(["r1"])).toEqual({ ok: true, settled: 1 });
    expect(await o.activePage({ after: 0, limit: 10 })).toEqual({ ok: true, prompts: [], queued: 0, running: 0 });
  });

  it("pages through every unended prompt, oldest first, of one state if asked, with the counts of them all", { timeout: 20_000 }, async () => {
    const name = "comfyui:pages";
    const o = objectFor(name);
    // An object never written to answers an empty page.
    expect(await o.activePage({ after: 0, limit: 10 })).toEqual({ ok: true, prompts: [], queued: 0, running: 0 });
    const total = ACTIVE_PAGE_MAX + 5;
    await runInDurableObject(o, async (instance: ComfySocket) => {
      for (let i = 1; i <= total; i++) await instance.reserve({ prompt_id: `p${i}`, run_id: `r${i}`, client_id: null });
    });
    await runInDurableObject(o, (_x, state) => void state.storage.sql.exec("UPDATE prompts SET state = 'running' WHERE number IN (2, 1003)"));
    await o.settle(["r3"]);

    const first = await o.activePage({ after: 0, limit: 4 });
    expect(first.prompts.map((p) => p.prompt_id)).toEqual(["p1", "p2", "p4", "p5"]);
    expect({ queued: first.queued, running: first.running }).toEqual({ queued: total - 3, running: 2 });
    expect((await o.activePage({ after: 5, limit: 2 })).prompts.map((p) => p.number)).toEqual([6, 7]);
    // A page holds at most ACTIVE_PAGE_MAX, however many are asked for; the next starts after its last.
    const big = await o.activePage({ after: 0, limit: 10 * ACTIVE_PAGE_MAX });
    expect(big.prompts).toHaveLength(ACTIVE_PAGE_MAX);
    const rest = await o.activePage({ after: big.prompts.at(-1)?.number ?? 0, limit: ACTIVE_PAGE_MAX });
    expect(rest.prompts.map((p) => p.prompt_id)).toEqual(["p1002", "p1003", "p1004", "p1005"]);
    expect((await o.activePage({ after: 0, limit: 10, state: "running" })).prompts.map((p) => p.prompt_id)).toEqual(["p2", "p1003"]);
    expect((await o.activePage({ after: 1, limit: 2, state: "queued" })).prompts.map((p) => p.prompt_id)).toEqual(["p4", "p5"]);
    // A count alone: no rows.
    expect(await o.activePage({ after: 0, limit: 0 })).toEqual({ ok: true, prompts: [], queued: total - 3, running: 2 });
  });

  it("settles a batch at once, counting only those not ended yet, with one status to the sockets; refuses more than a page", { timeout: 20_000 }, async () => {
    const name = "comfyui:settle-batch";
    const o = objectFor(name);
    for (const i of [1, 2, 3]) await o.reserve({ prompt_id: `s${i}`, run_id: `rs${i}`, client_id: null });
    await o.settle(["rs1"]);
    const sock = await connect(name, "c1");
    expect(await o.settle(["rs1", "rs2", "rs3", "unknown"])).toEqual({ ok: true, settled: 2 });
    await settle(name);
    expect(sock.got.map((m) => m.type)).toEqual(["status", "status"]);
    expect(sock.got.at(-1)?.data).toEqual({ status: { exec_info: { queue_remaining: 0 } } });
    expect((await o.lookup("s3"))?.state).toBe("ended");
    expect(await o.settle([])).toEqual({ ok: true, settled: 0 });
    const tooMany = await o.settle(Array.from({ length: ACTIVE_PAGE_MAX + 1 }, (_, i) => `x${i}`));
    expect(tooMany).toMatchObject({ ok: false, code: "conflict" });
    sock.ws.close();
  });
});

describe("ComfySocket retention", () => {
  it("forgets an ended prompt once its job is deleted (RETENTION_S after it ended), and keeps the rest", async () => {
    const o = objectFor("comfyui:retention");
    await o.reserve({ prompt_id: "old", run_id: "r-old", client_id: null });
    await o.reserve({ prompt_id: "open", run_id: "r-open", client_id: null });
    await o.settle(["r-old"]);
    await runInDurableObject(o, (_x, state) => void state.storage.sql.exec("UPDATE prompts SET ended_at = ended_at - ? WHERE prompt_id = 'old'", 31 * 86_400_000));
    expect(await runDurableObjectAlarm(o)).toBe(true);
    expect(await o.lookup("old")).toBeNull();
    expect((await o.lookup("open"))?.state).toBe("queued");
  });
});

describe("ComfySocket news", () => {
  it("sends a prompt's messages to its client's sockets only, and the queue's length to every socket", async () => {
    const name = "comfyui:news";
    const mine = await connect(name, "c1");
    const other = await connect(name, "c2");
    await objectFor(name).reserve({ prompt_id: "p-1", run_id: RUN_ID, client_id: "c1" });
    const base = snapshot({ dialect: "comfyui", spec: { type: "workflow", samples: 1, workflow: { "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "m" } }, "9": { class_type: "SaveImage", inputs: { images: ["4", 0] } } } } });
    const running = { ...base, job: { ...base.job, status: "running" as const, output: [] }, output_keys: [] };
    const notices: JobNotice[] = [
      { events: [event(2, "job.started")], snapshot: running, progress: null },
      { events: [event(3, "job.progress", { step: 4, steps: 20 })], snapshot: running, progress: { fraction: 0.2, step: 4, steps: 20, eta_s: null, job: "", job_no: 0, job_count: 1, job_timestamp: "", textinfo: null, node: "3" } },
      { events: [event(4, "job.succeeded")], snapshot: { ...base, job: { ...base.job, output: base.job.output.map((o) => ({ ...o, node_id: "9" })) } }, progress: null },
    ];
    for (const n of notices) await objectFor(name).jobNotice(n);
    await settle(name);
    const types = mine.got.map((m) => m.type);
    expect(types).toEqual(["status", "status", "execution_start", "execution_cached", "executing", "status", "executing", "progress", "executing", "executed", "execution_success", "executing", "status"]);
    // The loader runs first, then the node the backend reports.
    expect(mine.got.filter((m) => m.type === "executing").map((m) => m.data.node)).toEqual(["4", "3", "9", null]);
    expect(mine.got[7]).toEqual({ type: "progress", data: { value: 4, max: 20, prompt_id: "p-1", node: "3" } });
    expect(mine.got[9]?.data).toMatchObject({ node: "9", display_node: "9", prompt_id: "p-1", output: { images: [{ filename: `${RUN_ID}_00000_.png`, subfolder: "", type: "output" }] } });
    expect(mine.got[11]).toEqual({ type: "executing", data: { node: null, prompt_id: "p-1" } });
    expect(other.got.map((m) => m.type)).toEqual(["status", "status", "status", "status"]);
    expect(other.got.at(-1)?.data).toEqual({ status: { exec_info: { queue_remaining: 0 } } });
    mine.ws.close();
    other.ws.close();
  });

  it("sends a running prompt's preview to its client's sockets only, as ComfyUI's binary frame; none once the prompt ended", async () => {
    const name = "comfyui:previews";
    const [mine, other] = await Promise.all([connect(name, "c1"), connect(name, "c2")]);
    await objectFor(name).reserve({ prompt_id: "p-prev", run_id: RUN_ID, client_id: "c1" });
    await objectFor(name).jobNotice({ events: [event(2, "job.started")], snapshot: snapshot({ dialect: "comfyui", status: "running" }), progress: null });
    await objectFor(name).jobPreview({ run_id: RUN_ID, content_type: "image/jpeg", image: new Uint8Array([9, 8, 7]) });
    await objectFor(name).jobPreview({ run_id: "run_unknown", content_type: "image/png", image: new Uint8Array([1]) });
    await settle(name);
    expect(mine.frames).toEqual([[0, 0, 0, 1, 0, 0, 0, 1, 9, 8, 7]]);
    expect(other.frames).toEqual([]);
    await objectFor(name).jobNotice({ events: [event(3, "job.canceled")], snapshot: snapshot({ dialect: "comfyui", status: "canceled" }), progress: null });
    await objectFor(name).jobPreview({ run_id: RUN_ID, content_type: "image/png", image: new Uint8Array([6]) });
    await settle(name);
    expect(mine.frames).toHaveLength(1);
  });

  it("sends no preview or progress while another prompt its client hears of runs: the client would take them as its own prompt's", async () => {
    const name = "comfyui:previews-side-by-side";
    const o = objectFor(name);
    const [c1, c2] = await Promise.all([connect(name, "c1"), connect(name, "c2")]);
    const running = (id: string) => ({ events: [event(2, "job.started")], snapshot: runningJob(id), progress: null });
    const preview = (run_id: string) => o.jobPreview({ run_id, content_type: "image/png", image: new Uint8Array([run_id.length]) });
    for (const [p, client] of [["a", "c1"], ["b", "c1"], ["c", "c2"]] as const) {
      await o.reserve({ prompt_id: p, run_id: `r-${p}`, client_id: client });
      await o.jobNotice(running(`r-${p}`));
    }
    await preview("r-a");
    await preview("r-c");
    await settle(name);
    const progress = (id: string) => o.jobNotice({ events: [event(3, "job.progress", { step: 1, steps: 4, node: "3" })], snapshot: runningJob(id), progress: null });
    await progress("r-a");
    await progress("r-a");
    await settle(name);
    // c1 runs two prompts: neither's preview goes, nor a's progress but its first (the SDK's onStart
    // waits for it); c2's one prompt is alone on its sockets.
    expect(c1.frames).toEqual([]);
    expect(c1.got.filter((m) => m.type === "progress").map((m) => m.data.prompt_id)).toEqual(["a"]);
    expect(c2.frames).toHaveLength(1);
    await o.settle(["r-b"]);
    await preview("r-a");
    await progress("r-a");
    await settle(name);
    expect(c1.frames).toHaveLength(1);
    expect(c1.got.filter((m) => m.type === "progress").map((m) => m.data.prompt_id)).toEqual(["a", "a"]);
    // A running prompt of no client is heard by every socket: then no client's preview goes.
    await o.reserve({ prompt_id: "d", run_id: "r-d", client_id: null });
    await o.jobNotice(running("r-d"));
    await preview("r-a");
    await preview("r-c");
    await settle(name);
    expect([c1.frames.length, c2.frames.length]).toEqual([1, 1]);
  });

  it("sends a prompt id queued again its first progress beside another prompt, though the id's first run ended without its end notice", async () => {
    const name = "comfyui:id-again";
    const o = objectFor(name);
    const c1 = await connect(name, "c1");
    const step = (id: string, seq: number) => o.jobNotice({ events: [event(seq, "job.progress", { step: seq, steps: 9, node: "3" })], snapshot: runningJob(id), progress: null });
    await o.reserve({ prompt_id: "same", run_id: "r-1", client_id: "c1" });
    await step("r-1", 1);
    await step("r-1", 2);
    // Its end notice lost: a read of the queue settles it, and the client takes it out of the history.
    await o.settle(["r-1"]);
    await o.forgetEnded(["same"]);
    await o.reserve({ prompt_id: "other", run_id: "r-other", client_id: "c1" });
    await o.jobNotice({ events: [event(2, "job.started")], snapshot: runningJob("r-other"), progress: null });
    await o.reserve({ prompt_id: "same", run_id: "r-2", client_id: "c1" });
    await step("r-2", 1);
    await step("r-2", 2);
    await settle(name);
    // The first run's two (it ran alone), then the second run's first it can hear (beside "other").
    expect(c1.got.filter((m) => m.type === "progress" && m.data.prompt_id === "same").map((m) => m.data.value)).toEqual([1, 2, 2]);
  });

  it("counts a prompt as running from any notice that says so, its job.started notice lost on the way", async () => {
    const name = "comfyui:start-lost";
    const o = objectFor(name);
    const c1 = await connect(name, "c1");
    await o.reserve({ prompt_id: "a", run_id: "r-a", client_id: "c1" });
    await o.reserve({ prompt_id: "b", run_id: "r-b", client_id: "c1" });
    // a's first notice to arrive is a progress one; b starts after.
    await o.jobNotice({ events: [event(3, "job.progress", { step: 1, steps: 4, node: "3" })], snapshot: runningJob("r-a"), progress: null });
    await o.jobNotice({ events: [event(2, "job.started")], snapshot: runningJob("r-b"), progress: null });
    expect((await o.activePage({ after: 0, limit: 10 })).prompts.map((p) => p.state)).toEqual(["running", "running"]);
    await o.jobPreview({ run_id: "r-b", content_type: "image/png", image: new Uint8Array([1]) });
    await settle(name);
    expect(c1.frames).toEqual([]);
  });

  it("tells every socket of the tenant of a prompt queued without a client id, as ComfyUI broadcasts it", async () => {
    const name = "comfyui:broadcast";
    const a = await connect(name, "a");
    const b = await connect(name, "b");
    await objectFor(name).reserve({ prompt_id: "p-all", run_id: RUN_ID, client_id: null });
    await objectFor(name).jobNotice({ events: [event(2, "job.started")], snapshot: snapshot({ dialect: "comfyui", status: "running" }), progress: null });
    await settle(name);
    for (const socket of [a, b]) expect(socket.got.filter((m) => m.type === "execution_start").map((m) => m.data.prompt_id)).toEqual(["p-all"]);
    a.ws.close();
    b.ws.close();
  });

  it("never tells one tenant's sockets of another tenant's prompt", async () => {
    const watcher = await connect("comfyui:tenant-b", "same-client");
    await objectFor("comfyui:tenant-a").reserve({ prompt_id: "p-a", run_id: RUN_ID, client_id: "same-client" });
    const s = snapshot({ dialect: "comfyui", status: "running" });
    await objectFor("comfyui:tenant-a").jobNotice({ events: [event(2, "job.started")], snapshot: s, progress: null });
    // The other tenant's object does not know the job: a notice sent there by mistake says nothing either.
    await objectFor("comfyui:tenant-b").jobNotice({ events: [event(2, "job.started")], snapshot: s, progress: null });
    await settle("comfyui:tenant-b");
    expect(watcher.got.map((m) => m.type)).toEqual(["status"]);
    watcher.ws.close();
  });
});

describe("ComfySocket heartbeat", () => {
  it("tells the sockets the queue's length at each alarm while a prompt is unfinished, and no more once none is", async () => {
    const name = "comfyui:heartbeat";
    const o = objectFor(name);
    const sock = await connect(name, "c1");
    await o.reserve({ prompt_id: "hb", run_id: "r-hb", client_id: "c1" });
    const statuses = () => sock.got.filter((m) => m.type === "status").map((m) => (m.data.status as { exec_info: { queue_remaining: number } }).exec_info.queue_remaining);
    await settle(name);
    const before = statuses().length;
    // A silent socket is a dead one to ComfyUI's clients: each alarm says the queue's length again.
    for (let beat = 1; beat <= 2; beat++) {
      expect(await runDurableObjectAlarm(o)).toBe(true);
      await settle(name);
      expect(statuses().slice(before)).toEqual(Array(beat).fill(1));
    }
    await o.settle(["r-hb"]);
    await settle(name);
    const ended = statuses().length;
    // What the alarm is kept for now is the ended prompt's forgetting, and it sends nothing.
    await runDurableObjectAlarm(o);
    await settle(name);
    expect(statuses().length).toBe(ended);
    expect((await o.lookup("hb"))?.state).toBe("ended");
  });
});

describe("ComfySocket held ends", () => {
  it("holds a prompt's execution_success in storage while another prompt of its client runs, then sends it; its executing null goes at once", async () => {
    const name = "comfyui:held";
    const o = objectFor(name);
    const sock = await connect(name, "c1");
    const graph = { "9": { class_type: "SaveImage", inputs: {} } };
    const jobOf = (id: string, status: "running" | "succeeded") => {
      const s = snapshot({ dialect: "comfyui", status, spec: { type: "workflow", samples: 1, workflow: graph } });
      return { ...s, job: { ...s.job, id } };
    };
    for (const p of ["long", "short"]) {
      await o.reserve({ prompt_id: p, run_id: `r-${p}`, client_id: "c1" });
      await o.jobNotice({ events: [event(2, "job.started")], snapshot: jobOf(`r-${p}`, "running"), progress: null });
    }
    await o.jobNotice({ events: [event(3, "job.succeeded")], snapshot: jobOf("r-short", "succeeded"), progress: null });
    await settle(name);
    const closing = (id: string) => sock.got.filter((m) => m.data.prompt_id === id && (m.type === "execution_success" || (m.type === "executing" && m.data.node === null))).map((m) => m.type);
    expect(sock.got.filter((m) => m.data.prompt_id === "short").map((m) => m.type)).toContain("executed");
    // `executing` null names its prompt, and a client waiting for it (websockets_api_example) must not wait for another's end.
    expect(closing("short")).toEqual(["executing"]);
    // Kept in the object's storage, so a restart or hibernation in between loses nothing.
    const stored = await runInDurableObject(o, (_x, state) => state.storage.sql.exec<{ prompt_id: string }>("SELECT prompt_id FROM held_ends").toArray().map((r) => r.prompt_id));
    expect(stored).toEqual(["short"]);
    await o.jobNotice({ events: [event(3, "job.succeeded")], snapshot: jobOf("r-long", "succeeded"), progress: null });
    await settle(name);
    expect(closing("long")).toEqual(["execution_success", "executing"]);
    expect(closing("short")).toEqual(["executing", "execution_success"]);
    // The long prompt's output came before the short one's end, as a ComfyUI running one at a time says it.
    const index = (type: string, id: string) => sock.got.findIndex((m) => m.type === type && m.data.prompt_id === id);
    expect(index("execution_success", "short")).toBeGreaterThan(index("executed", "long"));
    sock.ws.close();
  });

  it("sends a held end at the alarm once the longest a prompt can run has passed (the other prompt's end notice lost)", async () => {
    const name = "comfyui:held-lost";
    const o = objectFor(name);
    const sock = await connect(name, "c1");
    for (const p of ["stuck", "done"]) {
      await o.reserve({ prompt_id: p, run_id: `r-${p}`, client_id: "c1" });
      const s = snapshot({ dialect: "comfyui", status: "running" });
      await o.jobNotice({ events: [event(2, "job.started")], snapshot: { ...s, job: { ...s.job, id: `r-${p}` } }, progress: null });
    }
    const s = snapshot({ dialect: "comfyui", status: "succeeded" });
    await o.jobNotice({ events: [event(3, "job.succeeded")], snapshot: { ...s, job: { ...s.job, id: "r-done" } }, progress: null });
    await runDurableObjectAlarm(o);
    await settle(name);
    expect(sock.got.some((m) => m.type === "execution_success")).toBe(false);
    await runInDurableObject(o, (_x, state) => void state.storage.sql.exec("UPDATE held_ends SET held_at = held_at - ?", 2 * 3_600_000));
    await runDurableObjectAlarm(o);
    await settle(name);
    expect(sock.got.filter((m) => m.type === "execution_success").map((m) => m.data.prompt_id)).toEqual(["done"]);
    sock.ws.close();
  });
});

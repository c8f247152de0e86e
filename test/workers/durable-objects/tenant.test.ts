import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { TenantObject } from "../../../durable-objects/tenant";
import { IDEMPOTENCY_TTL_MS, type IndexRow } from "../../../src/contracts/tenant";
import { listJobs } from "../../../src/jobs/list";
import { randomId } from "../../../src/lib/crypto";
import { tenantObjects } from "../support/objects";

const tenant = (name: string) => tenantObjects.get(tenantObjects.idFromName(name));

describe("tenant object", () => {
  it("binds an idempotency key to the first run and answers conflict for another body", async () => {
    const t = tenant("idem");
    expect(await t.claim("idempotency", "k1", "hash-a", "run_first", IDEMPOTENCY_TTL_MS)).toEqual({ status: "claimed", runId: "run_first" });
    expect(await t.claim("idempotency", "k1", "hash-a", "run_second", IDEMPOTENCY_TTL_MS)).toEqual({ status: "existing", runId: "run_first" });
    expect(await t.claim("idempotency", "k1", "hash-b", "run_third", IDEMPOTENCY_TTL_MS)).toMatchObject({ status: "conflict" });
  });

  it("scopes keys per tenant and per scope", async () => {
    expect(await tenant("scope-a").claim("idempotency", "same", "h", "run_a", IDEMPOTENCY_TTL_MS)).toMatchObject({ status: "claimed" });
    expect(await tenant("scope-b").claim("idempotency", "same", "h", "run_b", IDEMPOTENCY_TTL_MS)).toMatchObject({ status: "claimed", runId: "run_b" });
    expect(await tenant("scope-a").claim("eks_task", "same", "h", "run_c", null)).toMatchObject({ status: "claimed", runId: "run_c" });
  });

  it("forgets an idempotency key after 24 hours", async () => {
    const t = tenant("expiry");
    await t.claim("idempotency", "old", "h", "run_old", IDEMPOTENCY_TTL_MS);
    await runInDurableObject(t, (_o: TenantObject, state) => {
      state.storage.sql.exec("UPDATE claims SET expires_at = ? WHERE key = 'old'", Date.now() - 1);
    });
    expect(await t.claim("idempotency", "old", "h2", "run_new", IDEMPOTENCY_TTL_MS)).toEqual({ status: "claimed", runId: "run_new" });
  });

  it("answers reads of a tenant that never wrote without creating any table (reading does not write)", async () => {
    const t = tenant("never-wrote");
    const tables = () => runInDurableObject(t, (_o: TenantObject, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master").one().n);
    expect(await t.lookup("eks_task", "no-such-task")).toBeNull();
    expect(await t.getResult("no-such-result")).toBeNull();
    expect(await t.getOptions()).toEqual({});
    expect(await t.listWaiting(100)).toEqual([]);
    expect(await t.claimRefs("run_x")).toEqual([]);
    expect(await t.endpointCounts("abc")).toEqual([]);
    expect(await t.endpointLiveJobs("abc", null, 10)).toEqual([]);
    expect(await t.list({ limit: 20 })).toEqual([]);
    await t.noteEndpointJob("run_x", "canceled");
    await t.forget("run_x");
    await t.dropMissing("run_x");
    await t.purgeJob("run_x");
    await t.unnoteClaim("run_x", { scope: "eks_task", key: "no-such-task" });
    expect(await tables()).toBe(0);
    // The first write makes the tables, and reads then see it.
    await t.setOptions({ sd_model_checkpoint: "m" }, 1024);
    expect(await tables()).toBeGreaterThan(0);
    expect(await t.getOptions()).toEqual({ sd_model_checkpoint: "m" });
  });

  it("makes no table for a read when the runtime keeps rows of its own in the object (wrangler dev keeps its name)", async () => {
    const t = tenant("runtime-rows");
    const appTables = () =>
      runInDurableObject(t, (_o: TenantObject, state) => state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((r) => r.name));
    // What the local runtime writes into every object it names, before the object's own code runs.
    await runInDurableObject(t, async (_o: TenantObject, state) => {
      await state.storage.put("__runtime_name", "runtime-rows");
    });
    const before = await appTables();
    expect(await t.lookup("eks_task", "no-such-task")).toBeNull();
    expect(await t.getResult("no-such-result")).toBeNull();
    expect(await appTables()).toEqual(before);
    expect(before).not.toContain("claims");
  });

  it("deletes a kept answer once it expires, with nothing coming after it, and sweeps its index on time all the same", async () => {
    const t = tenant("kept-answers");
    await t.putResult("sync-a", "{}", 50);
    await t.putResult("sync-b", "{}", 60_000);
    const rows = () => runInDurableObject(t, (_o: TenantObject, state) => state.storage.sql.exec<{ id: string }>("SELECT id FROM results").toArray().map((r) => r.id));
    const alarm = () => runInDurableObject(t, (_o: TenantObject, state) => state.storage.getAlarm());
    await new Promise((r) => setTimeout(r, 60));
    expect(await runDurableObjectAlarm(t)).toBe(true);
    expect(await rows()).toEqual(["sync-b"]);
    // The next firing is when the other one expires...
    expect(await alarm()).toBeGreaterThan(Date.now() + 50_000);
    // ...or sooner, once the index has rows to sweep.
    await t.admit("t", { id: "run_kept", created_at: Date.now(), status: "queued", type: "txt2img", track_id: null }, null);
    expect(await alarm()).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(await t.getResult("sync-a")).toBeNull();
  });

  it("keeps its alarm when R2 fails to delete expired files: they are tried again, and the index is still swept", async () => {
    const t = tenant("files-r2-down");
    await t.admit("t", { id: "run_swept", created_at: Date.now(), status: "queued", type: "txt2img", track_id: null }, null);
    await t.expireFileAt("replicate-files/r2-down", Date.now() - 1);
    await runInDurableObject(t, (o: TenantObject) => {
      const bindings = Reflect.get(o, "env") as object;
      Reflect.set(o, "env", { ...bindings, IMAGES: { delete: () => Promise.reject(new Error("R2 down")) } });
    });
    expect(await runDurableObjectAlarm(t)).toBe(true);
    const left = await runInDurableObject(t, async (_o: TenantObject, state) => ({ alarm: await state.storage.getAlarm(), files: state.storage.sql.exec("SELECT key FROM expiring_files").toArray().length }));
    expect(left.files).toBe(1);
    expect(left.alarm).not.toBeNull();
    expect(left.alarm ?? 0).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  it("keeps the options a tenant set", async () => {
    const t = tenant("opts");
    await t.setOptions({ sd_model_checkpoint: "v1-5-pruned-emaonly.safetensors" }, 1024);
    expect(await t.getOptions()).toEqual({ sd_model_checkpoint: "v1-5-pruned-emaonly.safetensors" });
  });
});

describe("tenant job index", () => {
  const row = (id: string, created_at: number, over: Partial<IndexRow> = {}): IndexRow => ({ id, created_at, status: "queued", type: "txt2img", track_id: null, ...over });

  it("admits up to max_active_jobs queued or running jobs, and more once some end", async () => {
    const t = tenant("index-active");
    expect(await t.admit("t", row("run_a", 1), 2)).toEqual({ ok: true });
    expect(await t.admit("t", row("run_b", 2), 2)).toEqual({ ok: true });
    expect(await t.admit("t", row("run_c", 3), 2)).toMatchObject({ ok: false, active: 2 });
    await t.setStatus(row("run_a", 1, { status: "running" }));
    expect(await t.admit("t", row("run_c", 3), 2)).toMatchObject({ ok: false, active: 2 });
    await t.setStatus(row("run_a", 1, { status: "succeeded" }));
    expect(await t.admit("t", row("run_c", 3), 2)).toEqual({ ok: true });
    expect(await t.admit("t", row("run_d", 4), null)).toEqual({ ok: true });
    // The same job entered again (an Idempotency-Key's repeat racing its first request) takes no second place.
    const full = tenant("admit-again");
    expect(await full.admit("t", row("run_once", 1), 1)).toEqual({ ok: true });
    expect(await full.admit("t", row("run_once", 1), 1)).toEqual({ ok: true });
    expect(await full.admit("t", row("run_other", 2), 1)).toMatchObject({ ok: false, active: 1 });
  });

  it("never moves a status backwards: a late 'running' does not undo 'succeeded'", async () => {
    const t = tenant("index-order");
    await t.admit("t", row("run_x", 1), null);
    await t.setStatus(row("run_x", 1, { status: "succeeded" }));
    await t.setStatus(row("run_x", 1, { status: "running" }));
    expect((await t.list({ limit: 10 })).map((r) => r.status)).toEqual(["succeeded"]);
  });

  it("pages newest first by (created_at, id), with filters", async () => {
    const t = tenant("index-page");
    for (let i = 0; i < 5; i++) await t.admit("t", row(`run_${i}`, 100 + Math.floor(i / 2), { track_id: i % 2 ? "odd" : "even", type: i === 4 ? "img2img" : "txt2img" }), null);
    const all = await t.list({ limit: 10 });
    expect(all.map((r) => r.id)).toEqual(["run_4", "run_3", "run_2", "run_1", "run_0"]);
    const first = await t.list({ limit: 2 });
    const second = await t.list({ limit: 2, before: first[1] });
    expect([...first, ...second].map((r) => r.id)).toEqual(["run_4", "run_3", "run_2", "run_1"]);
    expect((await t.list({ limit: 10, track_id: "odd" })).map((r) => r.id)).toEqual(["run_3", "run_1"]);
    expect((await t.list({ limit: 10, type: "img2img" })).map((r) => r.id)).toEqual(["run_4"]);
    expect((await t.list({ limit: 10, created_after: 101, created_before: 102 })).map((r) => r.id)).toEqual(["run_3", "run_2"]);
  });

  it("keeps a just-entered row whose job is not created yet through the sweep and a list page, and removes old ones", async () => {
    const name = "index-missing";
    const t = tenant(name);
    const now = Date.now();
    const [young, oldSwept, oldListed, next] = [randomId("run"), randomId("run"), randomId("run"), randomId("run")];
    // An intake that died half-way two minutes ago, and one under way now: its row is in, its job object not yet.
    await t.admit(name, row(oldSwept, now - 120_000), null);
    expect(await t.admit(name, row(young, now), 2)).toEqual({ ok: true });

    expect(await runDurableObjectAlarm(t)).toBe(true);
    expect((await t.list({ limit: 10 })).map((r) => r.id)).toEqual([young]);

    await t.admit(name, row(oldListed, now - 120_000), null);
    expect((await listJobs(env, name, { limit: 10 })).data).toEqual([]);
    expect((await t.list({ limit: 10 })).map((r) => r.id)).toEqual([young]);
    // The submit under way keeps its place under max_active_jobs.
    expect(await t.admit(name, row(next, now), 1)).toMatchObject({ ok: false, active: 1 });
  });

  it("counts submits in fixed windows: at most `requests` per window, a fresh count in the next", async () => {
    const t = tenant("rate");
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await t.hit(3, 3_600_000));
    expect(answers.map((a) => a.ok)).toEqual([true, true, true, false]);
    expect(answers.map((a) => a.remaining)).toEqual([2, 1, 0, 0]);
    expect(answers[3]?.reset_ms).toBeGreaterThan(0);
    expect(answers[3]?.reset_ms).toBeLessThanOrEqual(3_600_000);
    await runInDurableObject(t, (_o: TenantObject, state) => {
      state.storage.sql.exec("UPDATE rate SET window_start = window_start - 3600000");
    });
    expect(await t.hit(3, 3_600_000)).toMatchObject({ ok: true, remaining: 2 });
  });

  it("keeps the runs its A1111 calls wait on, oldest first, until removed or past their time", async () => {
    const t = tenant("waiting");
    await t.addWaiting("run_a", 60_000);
    await new Promise((r) => setTimeout(r, 5));
    await t.addWaiting("run_b", 60_000);
    await t.addWaiting("run_gone", 1);
    await new Promise((r) => setTimeout(r, 10));
    const ids = async (limit = 100) => (await t.listWaiting(limit)).map((w) => w.run_id);
    expect(await ids()).toEqual(["run_a", "run_b"]);
    expect(await ids(1)).toEqual(["run_a"]);
    await t.removeWaiting("run_a");
    expect(await ids()).toEqual(["run_b"]);
    expect(await tenant("someone-else").listWaiting(100)).toEqual([]);
  });
});

describe("the tenant's A1111 options", () => {
  it("never add up past the cap, however many requests set them at once: the sum and the writes are one step", async () => {
    const t = tenantObjects.get(tenantObjects.idFromName("options-race"));
    const chunk = "x".repeat(100 * 1024);
    const taken = await Promise.all(Array.from({ length: 12 }, (_, i) => t.setOptions({ [`custom_${i}`]: chunk }, 512 * 1024)));
    expect(taken.filter(Boolean).length).toBe(5);
    expect(JSON.stringify(await t.getOptions()).length).toBeLessThanOrEqual(512 * 1024);
  });
});


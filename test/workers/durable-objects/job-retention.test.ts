import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobObject } from "../../../durable-objects/job/object";
import { config } from "../../../src/config";
import type { Env } from "../../../src/env";
import { EaselError } from "../../../src/errors";
import { jobStub } from "../../../src/jobs/client";
import { claimOutputPrefix } from "../../../src/jobs/output-claims";
import { randomId } from "../../../src/lib/crypto";
import { claimKey } from "../../../src/jobs/claims";
import { indexPage } from "../../../src/jobs/job-index";
import { chosenOutputPrefix } from "../../../src/storage/images";
import { indexObject, keyShard, runShard } from "../../../src/tenant-shards";
import { hangingJobInput } from "../support/jobs";
import { editJob, jobObjects } from "../support/objects";

const objectFor = (id: string) => jobObjects.get(jobObjects.idFromName(id));
const tables = (state: DurableObjectState): number => state.storage.sql.exec("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%'").one().n as number;
const RETENTION_MS = 30 * 24 * 3600_000;

/** Files in R2 under the job's own places, as intake and an adapter leave them. */
async function putJobFiles(id: string): Promise<string[]> {
  const keys = [`inputs/${id}/init`, `inputs/${id}/pass-through.json`, `outputs/${id}/image_0.png`];
  for (const key of keys) await env.IMAGES.put(key, "x");
  return keys;
}

describe("retention", () => {
  it("reads RETENTION_S as whole seconds, 30 days by default, at least 60, and names it when bad", () => {
    const retention = (raw?: string) => config.retentionMs({ RETENTION_S: raw } as Env);
    expect(retention()).toBe(RETENTION_MS);
    expect(retention("60")).toBe(60_000);
    for (const bad of ["59", "1.5", "soon", "-100"]) {
      let err: unknown;
      try {
        retention(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(EaselError);
      expect((err as EaselError).status).toBe(500);
      expect((err as EaselError).message).toMatch(/^RETENTION_S is invalid/);
    }
  });

  it("deletes an ended job, its files and its tenant rows RETENTION_S after it ended, and nothing before", async () => {
    const id = randomId("run");
    const key = `key-${id}`;
    await indexObject(env, "acme", id).admit("acme", { id, created_at: Date.now(), status: "queued", type: "img2img", track_id: null }, null);
    expect(await claimKey(env, "acme", "idempotency", key, "hash", id, 24 * 3600_000)).toEqual({ status: "claimed", runId: id });
    const keys = await putJobFiles(id);
    const neighbour = `outputs/${id}x/image_0.png`;
    await env.IMAGES.put(neighbour, "someone else's");
    await jobStub(env, id).create(hangingJobInput(id));
    expect((await jobStub(env, id).cancel("acme")).ok).toBe(true);

    // Ended but not yet old enough: its alarm changes nothing.
    await runDurableObjectAlarm(objectFor(id));
    expect((await jobStub(env, id).get("acme")).ok).toBe(true);

    await editJob(id, ["UPDATE job SET completed_at = completed_at - ?", RETENTION_MS + 1000]);
    await runInDurableObject(objectFor(id), async (_obj: JobObject, state) => {
      // Its deletion is what the alarm is now set for.
      expect(await state.storage.getAlarm()).not.toBeNull();
    });
    await runDurableObjectAlarm(objectFor(id));

    expect(await jobStub(env, id).get("acme")).toMatchObject({ ok: false, code: "not_found" });
    for (const key of keys) expect(await env.IMAGES.head(key), key).toBeNull();
    expect(await env.IMAGES.head(neighbour)).not.toBeNull();
    expect((await indexPage(env, "acme", { limit: 100 })).map((e) => e.row.id)).not.toContain(id);
    // The key, held in its own shard, is free for a new job, and the run's shard no longer points at it.
    expect(await keyShard(env, "acme", key).lookup("idempotency", key)).toBeNull();
    expect(await runShard(env, "acme", id).claimRefs(id)).toEqual([]);
    await runInDurableObject(objectFor(id), async (_obj: JobObject, state) => {
      expect(tables(state)).toBe(0);
      expect(await state.storage.getAlarm()).toBeNull();
    });
  });

  it("holds an ended job to RETENTION_S as it is now: one past it is gone to its reader and deleted then, not at the alarm a longer retention set", async () => {
    const id = randomId("run");
    await indexObject(env, "acme", id).admit("acme", { id, created_at: Date.now(), status: "queued", type: "img2img", track_id: null }, null);
    const keys = await putJobFiles(id);
    await jobStub(env, id).create(hangingJobInput(id));
    expect((await jobStub(env, id).cancel("acme")).ok).toBe(true);
    // Ended longer ago than the retention now configured, its deletion still set for a day from now.
    await editJob(id, ["UPDATE job SET completed_at = completed_at - ?", RETENTION_MS + 1000]);
    await runInDurableObject(objectFor(id), (_obj: JobObject, state) => state.storage.setAlarm(Date.now() + 24 * 3600_000));
    expect(await jobStub(env, id).get("acme")).toMatchObject({ ok: false, code: "not_found" });
    expect(await jobStub(env, id).events("acme")).toMatchObject({ ok: false, code: "not_found" });
    // Its deletion is due now.
    expect(await runInDurableObject(objectFor(id), (_obj: JobObject, state) => state.storage.getAlarm())).toBeLessThanOrEqual(Date.now());
    await runDurableObjectAlarm(objectFor(id));
    for (const key of keys) expect(await env.IMAGES.head(key), key).toBeNull();
    expect((await indexPage(env, "acme", { limit: 100 })).map((e) => e.row.id)).not.toContain(id);
    await runInDurableObject(objectFor(id), (_obj: JobObject, state) => expect(tables(state)).toBe(0));
  });

  it("keeps a job past RETENTION_S gone to its readers while its deletion fails and waits to be tried again", async () => {
    const id = randomId("run");
    await jobStub(env, id).create(hangingJobInput(id));
    expect((await jobStub(env, id).cancel("acme")).ok).toBe(true);
    await editJob(id, ["UPDATE job SET completed_at = completed_at - ?", RETENTION_MS + 1000]);
    // R2 cannot be reached from the job's object: its deletion fails and is tried again a minute later.
    await runInDurableObject(objectFor(id), (o: JobObject) => {
      const room = Reflect.get(o, "room") as { env: Env };
      const failing = (): Promise<never> => Promise.reject(new Error("R2 down"));
      room.env = { ...room.env, IMAGES: new Proxy(room.env.IMAGES, { get: (target, p) => (p === "delete" || p === "list" ? failing : Reflect.get(target, p)) }) };
    });
    await runDurableObjectAlarm(objectFor(id));
    expect(await runInDurableObject(objectFor(id), (_obj: JobObject, state) => tables(state))).toBeGreaterThan(0);
    expect(await jobStub(env, id).get("acme")).toMatchObject({ ok: false, code: "not_found" });
  });

  it("keeps its alarm through a deploy whose RETENTION_S does not parse: its webhook still goes, its deletion is tried again later", async () => {
    const badRetention = (id: string) =>
      runInDurableObject(objectFor(id), (o: JobObject) => {
        const room = Reflect.get(o, "room") as { env: Env };
        room.env = { ...room.env, RETENTION_S: "a month" };
      });
    const alarmOf = (id: string) => runInDurableObject(objectFor(id), (_obj: JobObject, state) => state.storage.getAlarm());
    // Ended with its webhook still to send.
    const pending = randomId("run");
    await jobStub(env, pending).create(hangingJobInput(pending, { webhook: "http://127.0.0.1:9/unreachable" }));
    expect((await jobStub(env, pending).cancel("acme")).ok).toBe(true);
    await badRetention(pending);
    await editJob(pending, ["UPDATE outbox SET next_at = ?", Date.now()]);
    await runDurableObjectAlarm(objectFor(pending));
    // Tried (its log read from its storage: a read through the API is the variable's 500 meanwhile).
    expect(await runInDurableObject(objectFor(pending), (_obj: JobObject, state) => state.storage.sql.exec("SELECT COUNT(*) AS n FROM deliveries").one().n)).toBeGreaterThan(0);
    expect(await alarmOf(pending)).not.toBeNull();
    // Ended, nothing left to send, its deletion due: tried again later, its alarm kept.
    const ended = randomId("run");
    await jobStub(env, ended).create(hangingJobInput(ended));
    expect((await jobStub(env, ended).cancel("acme")).ok).toBe(true);
    await editJob(ended, ["UPDATE job SET completed_at = completed_at - ?", RETENTION_MS + 1000]);
    await badRetention(ended);
    await runDurableObjectAlarm(objectFor(ended));
    expect(await alarmOf(ended)).toBeGreaterThan(Date.now());
    expect(await runInDurableObject(objectFor(ended), (_obj: JobObject, state) => tables(state))).toBeGreaterThan(0);
  });

  it("frees the output location a client chose (SD-on-EKS) for other tenants once the job is deleted", async () => {
    const id = randomId("run");
    const location = `out/task-${id}`;
    expect((await claimOutputPrefix(env, location, "acme", id)).status).toBe("claimed");
    await jobStub(env, id).create(hangingJobInput(id, { output_prefix: chosenOutputPrefix("acme", location) }));
    await jobStub(env, id).cancel("acme");
    expect((await claimOutputPrefix(env, location, "globex", randomId("run"))).status).toBe("conflict");
    await editJob(id, ["UPDATE job SET completed_at = completed_at - ?", RETENTION_MS + 1000]);
    await runDurableObjectAlarm(objectFor(id));
    expect(await jobStub(env, id).get("acme")).toMatchObject({ ok: false, code: "not_found" });
    expect((await claimOutputPrefix(env, location, "globex", randomId("run"))).status).toBe("claimed");
  });

  it("deletes the files of a job whose client chose their place, and only those: not the places of other jobs inside it", async () => {
    const id = randomId("run");
    // SD-on-EKS v1alpha1 without save_dir: the location is the task id alone, here "outputs".
    const prefix = chosenOutputPrefix("acme", "outputs");
    const own = [`${prefix}/image_0.png`, `${prefix}/image_1.png`];
    const kept = [`${prefix}/inner/image_0.png`, `outputs/${id}x/image_0.png`, "comfy/globex/input/image_0.png", chosenOutputPrefix("globex", "outputs/image_0.png")];
    for (const key of [...own, ...kept]) await env.IMAGES.put(key, "x");
    await jobStub(env, id).create(hangingJobInput(id, { output_prefix: prefix }));
    await jobStub(env, id).cancel("acme");
    await editJob(id, ["UPDATE job SET completed_at = completed_at - ?", RETENTION_MS + 1000]);
    await runDurableObjectAlarm(objectFor(id));
    expect(await jobStub(env, id).get("acme")).toMatchObject({ ok: false, code: "not_found" });
    for (const key of own) expect(await env.IMAGES.head(key), key).toBeNull();
    for (const key of kept) expect(await env.IMAGES.head(key), key).not.toBeNull();
  });

  it("keeps an ended job whose webhook is still being retried until the retries are over", async () => {
    const id = randomId("run");
    // Nothing listens there: each delivery fails and is retried on the test schedule (1 s, 1 s).
    await jobStub(env, id).create(hangingJobInput(id, { webhook: "https://receiver.invalid/hook" }));
    await jobStub(env, id).cancel("acme");
    await editJob(id, ["UPDATE job SET completed_at = completed_at - ?", RETENTION_MS + 1000], ["UPDATE outbox SET next_at = ?", Date.now() + 60_000]);
    await runDurableObjectAlarm(objectFor(id));
    expect((await jobStub(env, id).get("acme")).ok).toBe(true);
  });

  it("answers an id that names no job without giving its object any storage", async () => {
    const id = randomId("run");
    expect(await jobStub(env, id).get("acme")).toMatchObject({ ok: false, code: "not_found" });
    expect(await jobStub(env, id).events("acme")).toMatchObject({ ok: false, code: "not_found" });
    expect(await jobStub(env, id).cancel("acme")).toMatchObject({ ok: false, code: "not_found" });
    expect(await jobStub(env, id).wake("hang")).toBe(false);
    expect(await jobStub(env, id).backendCallback(1, "token", [], { text: "{}" })).toEqual({ accepted: false });
    await runInDurableObject(objectFor(id), (_obj: JobObject, state) => {
      expect(tables(state)).toBe(0);
    });
  });
});

describe("large pass-through fields", () => {
  it("shows a running job without reading them from R2, and a finished job's full rendering with them", async () => {
    const id = randomId("run");
    const key = `inputs/${id}/pass-through.json`;
    await env.IMAGES.put(key, JSON.stringify({ a1111_extra: { alwayson_scripts: { big: "B".repeat(100) } }, dialect_data: { parameters: { echoed: true } } }));
    const input = hangingJobInput(id, { pass_through_key: key, dialect_data: { endpoint: "ep-1" }, spec: { ...hangingJobInput(id).spec, a1111_extra: { restore_faces: true } } });
    await jobStub(env, id).create(input);
    const running = await jobStub(env, id).get("acme", { full: true });
    if (!running.ok) throw new Error("job not found");
    expect(running.snapshot.input.dialect_data).toEqual({ endpoint: "ep-1" });
    expect(running.snapshot.input.spec.a1111_extra).toEqual({ restore_faces: true });

    await jobStub(env, id).cancel("acme");
    const plain = await jobStub(env, id).get("acme");
    if (!plain.ok) throw new Error("job not found");
    expect(plain.snapshot.input.dialect_data).toEqual({ endpoint: "ep-1" });
    const full = await jobStub(env, id).get("acme", { full: true });
    if (!full.ok) throw new Error("job not found");
    expect(full.snapshot.input.dialect_data).toEqual({ endpoint: "ep-1", parameters: { echoed: true } });
    expect(full.snapshot.input.spec.a1111_extra).toEqual({ restore_faces: true, alwayson_scripts: { big: "B".repeat(100) } });
  });
});

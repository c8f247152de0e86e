import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { canTransition, MAX_DELIVERY_ROWS } from "../../../durable-objects/job/ledger";
import type { JobObject } from "../../../durable-objects/job/object";
import { taskIdOf } from "../../../durable-objects/job/progress";
import { jobStub } from "../../../src/jobs/client";
import { randomId } from "../../../src/lib/crypto";
import { hangingCalls, hangingJobInput, runIds, running, settled } from "../support/jobs";
import type { Delivery, JobStatus } from "../../../src/schemas/job";
import { runShard, shardName, shardOf } from "../../../src/tenant-shards";
import { endpointCounts } from "../../../src/jobs/tenant-runs";
import { editJob, forgetCallInFlight, jobObjects, schedulerObjects, tenantObjects } from "../support/objects";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
const STATUSES: JobStatus[] = ["queued", "running", "succeeded", "failed", "canceled"];
const LEGAL = new Set(["queued>running", "queued>failed", "queued>canceled", "running>succeeded", "running>failed", "running>canceled"]);

const newRunId = runIds();

const objectFor = (id: string) => jobObjects.get(jobObjects.idFromName(id));

/** The job's delivery log once its first try is in it (bounded: empty after 2 s). */
async function firstDeliveries(id: string): Promise<Delivery[]> {
  for (let i = 0; i < 100; i++) {
    const res = await jobStub(env, id).deliveries("acme");
    if (res.ok && res.deliveries.length) return res.deliveries;
    await new Promise((r) => setTimeout(r, 20));
  }
  return [];
}
/** The job's times as stored. */
const times = (id: string) =>
  runInDurableObject(objectFor(id), (_o: JobObject, state) => state.storage.sql.exec<{ created_at: number; started_at: number | null; deadline_at: number }>("SELECT created_at, started_at, deadline_at FROM job").one());

describe("job state machine", () => {
  it("allows exactly queued→running|failed|canceled and running→succeeded|failed|canceled", () => {
    for (const from of STATUSES) for (const to of STATUSES) expect(canTransition(from, to), `${from}>${to}`).toBe(LEGAL.has(`${from}>${to}`));
  });

  it("creates a queued job with a job.queued event, once per id", async () => {
    const id = newRunId();
    const first = await jobStub(env, id).create(hangingJobInput(id));
    expect(first.created).toBe(true);
    expect(first.snapshot.job).toMatchObject({ id, status: "queued", seed: 7, output: [], error: null, started_at: null });
    const again = await jobStub(env, id).create(hangingJobInput(id, { spec: { ...hangingJobInput(id).spec, seed: 99 } }));
    expect(again.created).toBe(false);
    expect(again.snapshot.job.seed).toBe(7);
    const events = await jobStub(env, id).events("acme");
    expect(events.ok && events.events.filter((e) => e.type === "job.queued")).toHaveLength(1);
    expect(events.ok && events.events[0]?.type).toBe("job.queued");
  });

  it("hands each success's output to the first stream read after it, and to no other tenant's", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    const before = await jobStub(env, id).readStream("acme");
    expect(before.ok && before.output).toBe(false);
    const ended = Date.now();
    await editJob(id, ["UPDATE job SET status = 'succeeded', completed_at = ?", ended]);
    expect(await jobStub(env, id).readStream("globex")).toMatchObject({ ok: false, code: "not_found" });
    const reads = async () => Promise.all([1, 2, 3].map(() => jobStub(env, id).readStream("acme")));
    const first = await reads();
    expect(first.filter((r) => r.ok && r.output)).toHaveLength(1);
    expect(first.every((r) => r.ok && r.snapshot.job.status === "succeeded")).toBe(true);
    // Ended again (a retried job's success): its output is new to the stream.
    await editJob(id, ["UPDATE job SET completed_at = ?", ended + 1_000]);
    const second = await reads();
    expect(second.filter((r) => r.ok && r.output)).toHaveLength(1);
    expect((await reads()).filter((r) => r.ok && r.output)).toHaveLength(0);
  });

  it("hides a job from every other tenant", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    expect(await jobStub(env, id).get("globex")).toMatchObject({ ok: false, code: "not_found" });
    expect(await jobStub(env, id).cancel("globex")).toMatchObject({ ok: false, code: "not_found" });
    expect(await jobStub(env, id).events("globex")).toMatchObject({ ok: false, code: "not_found" });
    expect(await jobStub(env, id).deliveries("globex")).toMatchObject({ ok: false, code: "not_found" });
    expect((await jobStub(env, id).get("acme")).ok).toBe(true);
  });

  it("cancels a queued job once; a second cancel is a conflict and nothing revives it", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { webhook: "https://receiver.example/hook" }));
    const canceled = await jobStub(env, id).cancel("acme");
    expect(canceled.ok && canceled.snapshot.job.status).toBe("canceled");
    expect(await jobStub(env, id).cancel("acme")).toMatchObject({ ok: false, code: "conflict" });
    // Whatever the alarm does now, the job stays canceled.
    await runDurableObjectAlarm(objectFor(id));
    const after = await jobStub(env, id).get("acme");
    expect(after.ok && after.snapshot.job.status).toBe("canceled");
    await runInDurableObject(objectFor(id), (_obj: JobObject, state) => {
      const rows = state.storage.sql.exec<{ type: string }>("SELECT type FROM outbox").toArray();
      expect(rows.map((r) => r.type)).toEqual(["job.canceled"]);
    });
  });

  it("closes an ended job's object once it has been idle, and the next request reopens it with everything kept", async () => {
    // Pinned to a backend nobody configured, the job fails at its first step: ended, no call in
    // flight, and no backend's circuit touched (other tests here count on theirs).
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { backend: "not-configured" }));
    expect((await settled(id)).status).toBe("failed");
    // A mark on this instance: a reopened object is a new instance without it.
    await runInDurableObject(objectFor(id), (obj: JobObject) => void Reflect.set(obj, "probe", true));
    await new Promise((r) => setTimeout(r, 17_000));
    expect(await runInDurableObject(objectFor(id), (obj: JobObject) => Reflect.get(obj, "probe"))).toBeUndefined();
    const after = await jobStub(env, id).get("acme");
    expect(after.ok && after.snapshot.job.status).toBe("failed");
    const events = await jobStub(env, id).events("acme");
    expect(events.ok && events.events.at(-1)?.type).toBe("job.failed");
  }, 30_000);

  it("keeps an ended job's object open while requests keep coming", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { backend: "not-configured" }));
    expect((await settled(id)).status).toBe("failed");
    await runInDurableObject(objectFor(id), (obj: JobObject) => void Reflect.set(obj, "probe", true));
    // Reads keep coming, as a dashboard's would: the object stays the same instance.
    for (let waited = 0; waited < 18_000; waited += 3_000) {
      await new Promise((r) => setTimeout(r, 3_000));
      expect((await jobStub(env, id).get("acme")).ok).toBe(true);
    }
    expect(await runInDurableObject(objectFor(id), (obj: JobObject) => Reflect.get(obj, "probe"))).toBe(true);
  }, 30_000);

  it("keeps the latest tries of a job's delivery log, however often a redelivery is asked", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { backend: "not-configured", webhook: "http://127.0.0.1:9/hook" }));
    expect((await settled(id)).status).toBe("failed");
    const log = () => runInDurableObject(objectFor(id), (_o: JobObject, state) => state.storage.sql.exec<{ started_at: number }>("SELECT started_at FROM deliveries ORDER BY id").toArray().map((d) => d.started_at));
    // The event's own tries (a 1 s, 1 s schedule) over, then what 150 redeliveries left in the log.
    for (let i = 0; i < 100 && (await log()).length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    await runInDurableObject(objectFor(id), (_o: JobObject, state) => {
      for (let i = 0; i < 150; i++) state.storage.sql.exec("INSERT INTO deliveries (event_id, type, attempt, url, started_at, status_code, duration_ms) VALUES ('msg_x', 'job.failed', 1, 'http://127.0.0.1:9/hook', ?, 200, 1)", i);
    });
    expect(await jobStub(env, id).redeliver("acme")).toMatchObject({ ok: true });
    const kept = await log();
    expect(kept.length).toBeLessThanOrEqual(MAX_DELIVERY_ROWS);
    // The latest stay, in order: the oldest went.
    expect(kept.slice(0, MAX_DELIVERY_ROWS - 1)).toEqual(Array.from({ length: MAX_DELIVERY_ROWS - 1 }, (_, i) => 150 - MAX_DELIVERY_ROWS + 1 + i));
  }, 20_000);

  it("refuses redelivery before the job has ended", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { webhook: "https://receiver.example/hook" }));
    expect(await jobStub(env, id).redeliver("acme")).toMatchObject({ ok: false, code: "conflict" });
  });
});

describe("job alarm", () => {
  it("fails a job over every unreachable backend, recording each attempt, then fails it with the last error", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { backend: undefined, spec: { ...hangingJobInput(id).spec, type: "txt2img" } }));
    const job = await settled(id);
    expect(job.status).toBe("failed");
    expect(job.error?.code).toBe("backend_failed");
    // Easel's own words: what the network stack said goes to the operator's log only.
    expect(job.error?.message).toBe("the backend could not be reached");
    const events = await jobStub(env, id).events("acme");
    const list = events.ok ? events.events : [];
    expect(list.filter((e) => e.type === "attempt.failed")).toHaveLength(2);
    expect(list.filter((e) => e.type === "attempt.started").map((e) => e.data.backend)).toEqual(["dead-a", "dead-b"]);
    expect(list.at(-1)?.type).toBe("job.failed");
  });

  it("runs a pinned job only on its backend", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { backend: "dead-b", spec: { ...hangingJobInput(id).spec, type: "txt2img" } }));
    const events = await jobStub(env, id).events("acme");
    await settled(id);
    const after = await jobStub(env, id).events("acme");
    const started = (after.ok ? after.events : []).filter((e) => e.type === "attempt.started").map((e) => e.data.backend);
    expect(events.ok).toBe(true);
    expect(started).toEqual(["dead-b"]);
  });

  it("fails a running job that outlived its deadline with code timeout, and the late answer changes nothing", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    await running(id);
    await editJob(id, ["UPDATE job SET deadline_at = ?", Date.now() - 1000]);
    await runDurableObjectAlarm(objectFor(id));
    const job = await settled(id);
    expect(job.status).toBe("failed");
    expect(job.error).toMatchObject({ code: "timeout" });
  });

  it("counts a run limit from the job's start: the earlier deadline, a timeout naming it, and set again by a retry's next start", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { timeout_s: 600, run_timeout_s: 2 }));
    await running(id);
    const first = await times(id);
    expect(first.deadline_at).toBe((first.started_at ?? 0) + 2_000);
    const job = await settled(id);
    expect(job.error).toEqual({ code: "timeout", message: "the job did not finish within 2 s of starting to run" });
    const retriedAt = Date.now();
    expect(await jobStub(env, id).retry("acme")).toMatchObject({ ok: true });
    // Queued again: the whole life counts from the retry, the run limit from the next start.
    await running(id);
    const second = await times(id);
    expect(second.started_at).toBeGreaterThanOrEqual(retriedAt);
    expect(second.deadline_at).toBe((second.started_at ?? 0) + 2_000);
    expect((await settled(id)).error?.message).toBe("the job did not finish within 2 s of starting to run");
  }, 20_000);

  it("keeps the whole-life deadline when it comes before the run limit's, and names it", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { timeout_s: 2, run_timeout_s: 3600 }));
    await running(id);
    const row = await times(id);
    expect(row.deadline_at).toBe(row.created_at + 2_000);
    expect((await settled(id)).error).toEqual({ code: "timeout", message: "the job did not finish within 2 s" });
  });

  it("cancels a running job: canceled at once, and the attempt's end cannot revive it", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    await running(id);
    const res = await jobStub(env, id).cancel("acme");
    expect(res.ok && res.snapshot.job.status).toBe("canceled");
    await runDurableObjectAlarm(objectFor(id));
    const after = await jobStub(env, id).get("acme");
    expect(after.ok && after.snapshot.job).toMatchObject({ status: "canceled", output: [] });
  });

  it("keeps a webhook event in the outbox with its state change, and logs each failed delivery with the next retry", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { webhook: "http://127.0.0.1:9/unreachable" }));
    await jobStub(env, id).cancel("acme");
    const rows = await firstDeliveries(id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ type: "job.canceled", attempt: 1, status_code: null });
    expect(rows[0]?.error).toMatch(/network error/);
    expect(rows[0]?.next_attempt_at).not.toBeNull();
  });
});

describe("a RunPod job's end at its endpoint row (what /health and /purge-queue read)", () => {
  for (const tenant of ["acme", "capped"]) {
    it(`reaches the run's shard, the index there or at home (${tenant === "capped" ? "max_active_jobs" : "no limits"})`, async () => {
      const id = newRunId();
      await jobStub(env, id).create(hangingJobInput(id, { tenant, dialect: "runpod" }));
      await runShard(env, tenant, id).trackEndpointJob("ep-end", id);
      await jobStub(env, id).cancel(tenant);
      const until = Date.now() + 3_000;
      let counts = await endpointCounts(env, tenant, "ep-end");
      while (!counts.has("canceled") && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20));
        counts = await endpointCounts(env, tenant, "ep-end");
      }
      expect(Object.fromEntries(counts)).toEqual({ canceled: { n: 1, retried: 0 } });
    });
  }
});

describe("a tenant taken out of TENANTS (an operator's deploy)", () => {
  /** The job's object reads TENANTS without acme from now on. */
  const withoutAcme = (id: string) =>
    runInDurableObject(objectFor(id), (o: JobObject) => {
      const room = Reflect.get(o, "room") as { env: typeof env };
      room.env = { ...env, TENANTS: JSON.stringify({ ...(JSON.parse(env.TENANTS ?? "{}") as Record<string, unknown>), acme: undefined }) };
    });

  it("sends none of its webhooks unsigned: each try is logged as not sent, and waits on the schedule", async () => {
    const id = newRunId();
    const hook = `/removed-tenant-hook-${id}`;
    await jobStub(env, id).create(hangingJobInput(id, { webhook: `${inject("hangingBackendUrl")}${hook}` }));
    await withoutAcme(id);
    await jobStub(env, id).cancel("acme");
    const rows = await firstDeliveries(id);
    expect(rows[0]).toMatchObject({ type: "job.canceled", attempt: 1, status_code: null, error: "not sent: the tenant is no longer configured" });
    expect(rows[0]?.next_attempt_at).not.toBeNull();
    expect(await hangingCalls(hook)).toBe(0);
  });

  it("gets no GPU time: its queued job waits in no line and calls no backend", async () => {
    const id = newRunId();
    const calls = await hangingCalls("/sdapi/v1/img2img");
    await withoutAcme(id);
    await jobStub(env, id).create(hangingJobInput(id));
    await runDurableObjectAlarm(objectFor(id));
    const row = await runInDurableObject(objectFor(id), (_o: JobObject, state) => state.storage.sql.exec<{ status: string; waiting_on: string | null; dispatch_at: number | null }>("SELECT status, waiting_on, dispatch_at FROM job").one());
    expect(row).toMatchObject({ status: "queued", waiting_on: null });
    expect(row.dispatch_at).toBeGreaterThan(Date.now() + 30_000);
    expect(await hangingCalls("/sdapi/v1/img2img")).toBe(calls);
  });
});

describe("the slot of a call still out when its job ended", () => {
  /** A job canceled while its generation ran on the hanging backend. */
  const canceledWhileRunning = async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    await running(id);
    expect(await jobStub(env, id).cancel("acme")).toMatchObject({ ok: true });
    return id;
  };

  it("is held for the scheduler while the call may run (up to the backend's timeout), even with nothing left here to settle it", async () => {
    const id = await canceledWhileRunning();
    // What a restart leaves: the job ended, its attempt canceled, its call cut with the instance.
    await forgetCallInFlight(id);
    const interrupts = await hangingCalls("/sdapi/v1/interrupt");
    expect(await jobStub(env, id).holdsSlot("hang")).toBe(true);
    // A1111 still runs it: the stop the restart may have cut is sent again.
    expect(await hangingCalls("/sdapi/v1/interrupt")).toBe(interrupts + 1);
    expect(await jobStub(env, id).holdsSlot("elsewhere")).toBe(false);
    await editJob(id, ["UPDATE attempts SET started_at = ?", Date.now() - 10 * 24 * 3600_000]);
    expect(await jobStub(env, id).holdsSlot("hang")).toBe(false);
  });

  it("is given back as soon as the backend says it no longer runs the canceled call, not at its timeout", async () => {
    const id = await canceledWhileRunning();
    await forgetCallInFlight(id);
    await fetch(`${inject("hangingBackendUrl")}/_complete?task=${encodeURIComponent(taskIdOf(id, 1))}`);
    expect(await jobStub(env, id).holdsSlot("hang")).toBe(false);
  });

  it("says, for the slot kept under its attempt's name, whether that attempt's generation still runs on the backend", async () => {
    const id = await canceledWhileRunning();
    await forgetCallInFlight(id);
    expect(await jobStub(env, id).attemptRuns("hang", 1)).toBe(true);
    // Another backend, or an attempt that never was, holds nothing there.
    expect(await jobStub(env, id).attemptRuns("elsewhere", 1)).toBe(false);
    expect(await jobStub(env, id).attemptRuns("hang", 2)).toBe(false);
    await fetch(`${inject("hangingBackendUrl")}/_complete?task=${encodeURIComponent(taskIdOf(id, 1))}`);
    expect(await jobStub(env, id).attemptRuns("hang", 1)).toBe(false);
  });

  it("canceled after a restart cut its call, is given back once the backend says the stop landed, not held to the backend's timeout", { timeout: 20_000 }, async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    await running(id);
    // A restart first (nothing here follows the call any more), then the cancel: A1111 still runs
    // the task when the interrupt goes, and has ended it a moment later.
    await forgetCallInFlight(id);
    expect(await jobStub(env, id).cancel("acme")).toMatchObject({ ok: true });
    setTimeout(() => void fetch(`${inject("hangingBackendUrl")}/_complete?task=${encodeURIComponent(taskIdOf(id, 1))}`), 300);
    const held = () =>
      runInDurableObject(schedulerObjects.get(schedulerObjects.idFromName("hang")), (_o: BackendScheduler, st) =>
        st.storage.sql.exec<{ job_id: string }>("SELECT job_id FROM slots WHERE job_id = ? OR job_id LIKE ?", id, `${id}#%`).toArray(),
      );
    let slots = await held();
    for (let i = 0; i < 150 && slots.length; i++) {
      await new Promise((r) => setTimeout(r, 100));
      slots = await held();
    }
    expect(slots).toEqual([]);
  });
});

describe("the tenant's job index", () => {
  // acme has no max_active_jobs: each job's row is in its run's shard.
  const index = (id: string) => tenantObjects.get(tenantObjects.idFromName(shardName("acme", shardOf(id))));
  const indexed = async (id: string) => (await index(id).list({ limit: 100 })).find((r) => r.id === id);

  async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
    const deadline = Date.now() + 5_000;
    let v = await read();
    while (!ok(v) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      v = await read();
    }
    return v;
  }

  it("is told when the job ends, in the row's own shard", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { track_id: "idx-1" }));
    await jobStub(env, id).cancel("acme");
    expect(await until(() => indexed(id), (r) => r?.status === "canceled")).toMatchObject({ status: "canceled", track_id: "idx-1", type: "img2img" });
  });

  it("corrects a lost end report and drops a row whose job was never created, on its sweep", async () => {
    const id = newRunId();
    const old = Date.now() - 120_000;
    await jobStub(env, id).create(hangingJobInput(id));
    // As if the job's end report had been lost: the index still has it active.
    await index(id).admit("acme", { id, created_at: old, status: "queued", type: "img2img", track_id: null }, null);
    await editJob(id, ["UPDATE job SET status = 'canceled', completed_at = ?", Date.now()]);
    // And an intake that died between entering a job in the index and creating it.
    const orphan = randomId("run");
    await index(id).admit("acme", { id: orphan, created_at: old, status: "queued", type: "txt2img", track_id: null }, null);
    expect(await runDurableObjectAlarm(index(id))).toBe(true);
    expect((await indexed(id))?.status).toBe("canceled");
    expect(await indexed(orphan)).toBeUndefined();
  });
});

describe("a job's backend credentials", () => {
  it("keeps them out of the job's row and snapshot, and drops them when the job ends", async () => {
    const id = newRunId();
    const credentials = { api_key_comfy_org: "comfyui-SECRET" };
    const created = await jobStub(env, id).create({ ...hangingJobInput(id), credentials });
    expect(JSON.stringify(created.snapshot)).not.toContain("SECRET");
    const stored = () => runInDurableObject(objectFor(id), (_o, state) => ({ kv: state.storage.kv.get("backend_credentials"), row: JSON.stringify(state.storage.sql.exec("SELECT * FROM job").toArray()) }));
    const held = await stored();
    expect(held.kv).toEqual(credentials);
    expect(held.row).not.toContain("SECRET");
    await jobStub(env, id).cancel("acme");
    expect((await stored()).kv).toBeUndefined();
  });
});

import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, inject, it } from "vitest";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import { canTransition, linesOf as waitingLines, type JobRow } from "../../../durable-objects/job/ledger";
import type { JobObject } from "../../../durable-objects/job/object";
import { WAITING_BACKSTOP_MS } from "../../../durable-objects/job/runner";
import { jobStub } from "../../../src/jobs/client";
import { randomId } from "../../../src/lib/crypto";
import { hangingJobInput } from "../support/jobs";
import type { Delivery, JobStatus } from "../../../src/schemas/job";
import { shardName, shardOf } from "../../../src/tenant-shards";
import { editJob, jobObjects, schedulerObjects, tenantObjects } from "../support/objects";

const STATUSES: JobStatus[] = ["queued", "running", "succeeded", "failed", "canceled"];
const LEGAL = new Set(["queued>running", "queued>failed", "queued>canceled", "running>succeeded", "running>failed", "running>canceled"]);

const created: string[] = [];
/** A fresh run id per test: storage is shared within this file. */
const newRunId = () => {
  const id = randomId("run");
  created.push(id);
  return id;
};

// Jobs left running would hold connections to the hanging backend across tests.
afterEach(async () => {
  for (const id of created.splice(0)) await jobStub(env, id).cancel("acme");
});

const objectFor = (id: string) => jobObjects.get(jobObjects.idFromName(id));

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

  it("refuses redelivery before the job has ended", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { webhook: "https://receiver.example/hook" }));
    expect(await jobStub(env, id).redeliver("acme")).toMatchObject({ ok: false, code: "conflict" });
  });
});

/** Waits (bounded) until the job has ended, through the same long-poll dialects use. */
async function settled(id: string) {
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    const res = await jobStub(env, id).waitForChange("acme", Number.MAX_SAFE_INTEGER, 5_000);
    if (res.ok && res.terminal) return res.snapshot.job;
  }
  throw new Error(`job ${id} did not end`);
}

async function running(id: string) {
  const until = Date.now() + 3_000;
  while (Date.now() < until) {
    const res = await jobStub(env, id).get("acme");
    if (res.ok && res.snapshot.job.status === "running") return;
    await new Promise((r) => setTimeout(r, 20));
  }
  const events = await jobStub(env, id).events("acme");
  throw new Error(`job ${id} never started: ${JSON.stringify(events)}`);
}

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
    let rows: Delivery[] = [];
    for (let i = 0; i < 100 && !rows.length; i++) {
      const res = await jobStub(env, id).deliveries("acme");
      rows = res.ok ? res.deliveries : [];
      if (!rows.length) await new Promise((r) => setTimeout(r, 20));
    }
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ type: "job.canceled", attempt: 1, status_code: null });
    expect(rows[0]?.error).toMatch(/network error/);
    expect(rows[0]?.next_attempt_at).not.toBeNull();
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

describe("live progress", () => {
  it("reads a running job's progress from its backend into the job and rate-limited job.progress events, null once it ends", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    await running(id);
    const progressEvents = async () => {
      const res = await jobStub(env, id).events("acme");
      return (res.ok ? res.events : []).filter((e) => e.type === "job.progress");
    };
    const until = Date.now() + 5_000;
    while ((await progressEvents()).length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    const events = await progressEvents();
    expect(events.length).toBeGreaterThanOrEqual(3);
    expect(events[0]?.data).toMatchObject({ fraction: expect.any(Number), step: expect.any(Number), steps: 20, eta_s: 3 });
    const fractions = events.map((e) => e.data.fraction as number);
    expect(fractions.at(-1)).toBeGreaterThan(fractions[0] ?? 1);
    // At most 2 in any second: consecutive events at least ~half a second apart.
    const times = events.map((e) => Date.parse(e.at));
    for (let i = 2; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 2] ?? 0)).toBeGreaterThanOrEqual(1000);

    const now = await jobStub(env, id).get("acme");
    expect(now.ok && now.snapshot.job.progress).toMatchObject({ fraction: expect.any(Number), steps: 20 });
    const live = await jobStub(env, id).liveProgress("acme", { image: true });
    expect(live).toMatchObject({ ok: true, status: "running", image: "cHJldmlldw==", progress: { job: "scripts_img2img", job_count: 1, steps: 20 } });
    expect(await jobStub(env, id).liveProgress("globex", { image: true })).toMatchObject({ ok: false, code: "not_found" });
    expect(await jobStub(env, id).skip("acme")).toMatchObject({ ok: true, skipped: true });

    const canceled = await jobStub(env, id).cancel("acme");
    expect(canceled.ok && canceled.snapshot.job.progress).toBeNull();
    expect(await jobStub(env, id).liveProgress("acme", { image: false })).toMatchObject({ ok: true, status: "canceled", progress: null });
  });

  it("sends one skip per attempt, however many come at once: a second could land on the next job there", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    await running(id);
    const before = await hangingCalls("/sdapi/v1/skip");
    const answers = await Promise.all(Array.from({ length: 5 }, () => jobStub(env, id).skip("acme")));
    expect(answers.every((a) => a.ok && a.skipped)).toBe(true);
    expect((await hangingCalls("/sdapi/v1/skip")) - before).toBe(1);
    await jobStub(env, id).cancel("acme");
  });

  it("has no progress while queued", async () => {
    const id = newRunId();
    const { snapshot } = await jobStub(env, id).create(hangingJobInput(id));
    expect(snapshot.job.progress).toBeNull();
    expect(await jobStub(env, id).skip("acme")).toMatchObject({ ok: true });
  });
});

const schedulerOf = (name: string) => schedulerObjects.get(schedulerObjects.idFromName(name));
const linesOf = (name: string) =>
  runInDurableObject(schedulerOf(name), (_o: BackendScheduler, state) => ({
    waiting: state.storage.sql.exec<{ job_id: string }>("SELECT job_id FROM waiting ORDER BY seq").toArray().map((r) => r.job_id),
    slots: state.storage.sql.exec<{ job_id: string }>("SELECT job_id FROM slots ORDER BY job_id").toArray().map((r) => r.job_id),
  }));
/** How often the hanging backend was called at `path`. */
const hangingCalls = async (path: string) => Number(await (await fetch(`${inject("hangingBackendUrl")}/_calls?path=${encodeURIComponent(path)}`)).text());
/** Fills a one-slot backend with a slot nobody will use, as a job running elsewhere would. */
const block = (name: string, jobId: string) =>
  schedulerOf(name).acquire({ backend: name, jobId, tenant: "acme", maxConcurrency: 1, cooldownMs: 30_000, leaseMs: 60_000, enqueue: false });
const clear = (name: string) =>
  runInDurableObject(schedulerOf(name), (o: BackendScheduler, state) => {
    state.storage.sql.exec("DELETE FROM slots");
    state.storage.sql.exec("DELETE FROM claims");
    state.storage.sql.exec("DELETE FROM waiting");
    // The line's index rows too: a head left pointing at a deleted job would hide the tenant's next one.
    state.storage.sql.exec("DELETE FROM line_tenants");
    state.storage.sql.exec("UPDATE line_count SET n = 0");
    // And the length the line keeps in memory, as a new instance would read it.
    (o as unknown as { line: { length: number | undefined } }).line.length = undefined;
  });
const row = (id: string) =>
  runInDurableObject(objectFor(id), (_o: JobObject, state) => {
    const r = state.storage.sql.exec<JobRow>("SELECT * FROM job").one();
    return { status: r.status, waiting_on: r.waiting_on, lines: waitingLines(r).sort(), dispatch_at: r.dispatch_at, deadline_at: r.deadline_at };
  });
/** The lines the job's instance is joining, as a dispatch holds them while its requests are out. */
const joining = (id: string, lines: string[]) =>
  runInDurableObject(objectFor(id), (obj: JobObject) => {
    (obj as unknown as { room: { memory: { joining: ReadonlySet<string> | undefined } } }).room.memory.joining = new Set(lines);
  });
/** Makes the job's backstop due now and runs its alarm. */
const backstop = async (id: string) => {
  await editJob(id, ["UPDATE job SET dispatch_at = ?", Date.now()]);
  await runDurableObjectAlarm(objectFor(id));
};
const twoLinesJob = (id: string) => hangingJobInput(id, { backend: undefined, spec: { ...hangingJobInput(id).spec, model: "two-lines" } });

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 3_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A job both busy backends could run, blocked in both and queued in both their lines. */
async function queuedInBothLines(): Promise<string> {
  await block("busy-a", "blocker-a");
  await block("busy-b", "blocker-b");
  const id = newRunId();
  await jobStub(env, id).create(twoLinesJob(id));
  await until("queued in both lines", () => row(id), (r) => r.lines.length === 2);
  return id;
}

describe("job scheduling", () => {
  afterEach(async () => {
    await clear("busy-a");
    await clear("busy-b");
  });

  it("waits in the line of every busy backend that could run it; the first to free a slot runs it and it leaves the other line", async () => {
    const id = await queuedInBothLines();
    expect((await linesOf("busy-a")).waiting).toEqual([id]);
    expect((await linesOf("busy-b")).waiting).toEqual([id]);
    await schedulerOf("busy-b").release("blocker-b", "success");
    await until("running", () => row(id), (r) => r.status === "running");
    expect((await row(id)).lines).toEqual([]);
    expect(await linesOf("busy-b")).toEqual({ waiting: [], slots: [id] });
    expect(await linesOf("busy-a")).toEqual({ waiting: [], slots: ["blocker-a"] });
  });

  it("takes one of two simultaneous grants: the other goes to that backend's next job at once, not held as a claim", async () => {
    await block("busy-a", "blocker-a");
    await block("busy-b", "blocker-b");
    const first = newRunId();
    const second = newRunId();
    await jobStub(env, first).create(twoLinesJob(first));
    await until("first queued in both lines", () => row(first), (r) => r.lines.length === 2);
    await jobStub(env, second).create(twoLinesJob(second));
    await until("second queued in both lines", () => row(second), (r) => r.lines.length === 2);
    await Promise.all([schedulerOf("busy-a").release("blocker-a", "success"), schedulerOf("busy-b").release("blocker-b", "success")]);
    // Well inside CLAIM_MS: a grant held for the first job would keep the second waiting that long.
    await until("both running", async () => [(await row(first)).status, (await row(second)).status], (s) => s.every((x) => x === "running"));
    const a = await linesOf("busy-a");
    const b = await linesOf("busy-b");
    expect([...a.waiting, ...b.waiting]).toEqual([]);
    expect([...a.slots, ...b.slots].sort()).toEqual([first, second].sort());
  });

  it("waits with no re-check of its own: its alarm is its deadline or the long backstop", async () => {
    await block("busy-a", "blocker-a");
    await block("busy-b", "blocker-b");
    const id = newRunId();
    const before = Date.now();
    await jobStub(env, id).create(twoLinesJob(id));
    const { dispatch_at, deadline_at } = await until("queued in both lines", () => row(id), (r) => r.lines.length === 2 && r.dispatch_at !== null && r.dispatch_at > before + 60_000);
    const alarm = await runInDurableObject(objectFor(id), (_o: JobObject, state) => state.storage.getAlarm());
    expect(dispatch_at).toBeGreaterThanOrEqual(before + WAITING_BACKSTOP_MS);
    expect(alarm).toBe(Math.min(dispatch_at ?? Infinity, deadline_at));
    // Its backstop finds both still busy: it keeps its place in both lines and waits as long again.
    await backstop(id);
    const again = await row(id);
    expect(again.lines).toEqual(["busy-a", "busy-b"]);
    expect(again.dispatch_at).toBeGreaterThanOrEqual(before + WAITING_BACKSTOP_MS);
    expect((await linesOf("busy-a")).waiting).toEqual([id]);
    expect((await linesOf("busy-b")).waiting).toEqual([id]);
  });

  it("takes a slot granted while its request to join that line is still out, before the line is written", async () => {
    const id = await queuedInBothLines();
    // As in the middle of a dispatch: no line written yet, the one being joined known to the instance.
    await editJob(id, ["UPDATE job SET waiting_on = NULL"]);
    await joining(id, ["busy-a"]);
    expect(await jobStub(env, id).wake("busy-b")).toBe(false);
    expect(await jobStub(env, id).wake("busy-a")).toBe(true);
  });

  it("leaves a line it is still joining when it is canceled, so no slot is granted to it there afterwards", async () => {
    await clear("busy-a");
    await block("busy-a", "blocker-a");
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { backend: "busy-a" }));
    await until("queued in its line", () => row(id), (r) => r.lines.join() === "busy-a");
    await editJob(id, ["UPDATE job SET waiting_on = NULL"]);
    await joining(id, ["busy-a"]);
    await jobStub(env, id).cancel("acme");
    expect((await linesOf("busy-a")).waiting).toEqual([]);
    await schedulerOf("busy-a").release("blocker-a", "success");
    expect((await linesOf("busy-a")).slots).toEqual([]);
    await clear("busy-a");
  });

  it("reads a line kept by the previous version (one plain name) as a one-line list", async () => {
    const id = await queuedInBothLines();
    await editJob(id, ["UPDATE job SET waiting_on = 'busy-a'"]);
    expect(await jobStub(env, id).wake("busy-b")).toBe(false);
    expect(await jobStub(env, id).wake("busy-a")).toBe(true);
  });

  it("waits for its wake-up alone when only one backend can run it: no re-check before the long backstop", async () => {
    await clear("busy-a");
    await block("busy-a", "blocker-a");
    const id = newRunId();
    const before = Date.now();
    await jobStub(env, id).create(hangingJobInput(id, { backend: "busy-a" }));
    await until("queued in its line", () => row(id), (r) => r.lines.join() === "busy-a");
    const { dispatch_at } = await runInDurableObject(objectFor(id), (_o: JobObject, state) => state.storage.sql.exec<{ dispatch_at: number }>("SELECT dispatch_at FROM job").one());
    expect(dispatch_at).toBeGreaterThanOrEqual(before + 4 * 60_000);
    await schedulerOf("busy-a").release("blocker-a", "success");
    await until("running", () => row(id), (r) => r.status === "running");
    await jobStub(env, id).cancel("acme");
    await clear("busy-a");
  });

  it("leaves every line when it ends, so no slot is ever granted to it afterwards", async () => {
    const id = await queuedInBothLines();
    await jobStub(env, id).cancel("acme");
    expect((await row(id)).lines).toEqual([]);
    expect([...(await linesOf("busy-a")).waiting, ...(await linesOf("busy-b")).waiting]).toEqual([]);
    await schedulerOf("busy-a").release("blocker-a", "success");
    await schedulerOf("busy-b").release("blocker-b", "success");
    expect([...(await linesOf("busy-a")).slots, ...(await linesOf("busy-b")).slots]).toEqual([]);
  });

  it("after a restart lost its call, interrupts the generation A1111 still runs and keeps its slot rather than running it again", async () => {
    await block("busy-b", "blocker-b");
    const id = newRunId();
    await jobStub(env, id).create(twoLinesJob(id));
    await running(id);
    expect((await linesOf("busy-a")).slots).toEqual([id]);
    const interrupts = await hangingCalls("/sdapi/v1/interrupt");
    // A new instance after a restart knows nothing of the call in flight.
    await runInDurableObject(objectFor(id), (obj: JobObject) => {
      (obj as unknown as { room: { memory: { inflight: number | undefined } } }).room.memory.inflight = undefined;
    });
    await runDurableObjectAlarm(objectFor(id));
    await runDurableObjectAlarm(objectFor(id));
    const events = await jobStub(env, id).events("acme");
    const list = events.ok ? events.events : [];
    // Logged once, with what the backend said; the backend calls this task active, so it was interrupted.
    expect(list.filter((e) => e.type === "attempt.lost").map((e) => e.data.found)).toEqual(["the backend is running it: interrupted"]);
    expect(await hangingCalls("/sdapi/v1/interrupt")).toBeGreaterThan(interrupts);
    // Still running there: the job keeps its slot and starts no second attempt.
    expect((await linesOf("busy-a")).slots).toEqual([id]);
    expect(list.filter((e) => e.type === "attempt.started")).toHaveLength(1);
    expect(await row(id)).toMatchObject({ status: "running", lines: [] });
  });

  it("enforces the deadline while a synchronous call is in flight", { timeout: 20_000 }, async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    await running(id);
    await editJob(id, ["UPDATE job SET deadline_at = ?", Date.now() - 1]);
    // No alarm is run by hand: the heartbeat must fire during the call.
    const job = await settled(id);
    expect(job).toMatchObject({ status: "failed", error: { code: "timeout" } });
  });

  it("sends job.started while the call is in flight, and a failing one gives way to the terminal event", { timeout: 20_000 }, async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { webhook: "http://127.0.0.1:9/unreachable", webhook_events: ["job.started", "job.succeeded", "job.failed", "job.canceled"] }));
    await running(id);
    const rows = await until(
      "a job.started delivery attempt",
      async () => {
        const res = await jobStub(env, id).deliveries("acme");
        return res.ok ? res.deliveries : [];
      },
      (d) => d.some((x) => x.type === "job.started"),
    );
    expect(rows.map((r) => r.type)).toEqual(["job.started"]);
    expect(await row(id)).toMatchObject({ status: "running" });
    await jobStub(env, id).cancel("acme");
    const after = await until(
      "the job.canceled delivery",
      async () => {
        const res = await jobStub(env, id).deliveries("acme");
        return res.ok ? res.deliveries : [];
      },
      (d) => d.some((x) => x.type === "job.canceled"),
    );
    // The canceled event went out on its first try, not after the started event's retries; the
    // started event is still on its schedule, behind it, under its own id.
    expect(after.filter((d) => d.type === "job.started")).toHaveLength(1);
    const events = await jobStub(env, id).events("acme");
    expect(events.ok && events.events.some((e) => e.type === "webhook.deferred")).toBe(true);
    const queued = await runInDurableObject(jobObjects.get(jobObjects.idFromName(id)), (_o: JobObject, st) =>
      st.storage.sql.exec<{ type: string; state: string; event_id: string }>("SELECT type, state, event_id FROM outbox ORDER BY seq").toArray(),
    );
    expect(queued.map((q) => q.type)).toEqual(["job.canceled", "job.started"]);
    expect(queued[1]).toMatchObject({ state: "pending", event_id: after.find((d) => d.type === "job.started")?.event_id });
  });
});

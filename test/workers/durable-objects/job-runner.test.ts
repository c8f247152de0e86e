/**
 * The attempt runner (durable-objects/job/runner.ts) with the real schedulers: waiting in the line
 * of every busy backend, taking one grant, the long backstop, a lost call kept from running twice,
 * and the deadline while a call is in flight.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import { linesOf as waitingLines, type JobRow } from "../../../durable-objects/job/tables";
import type { JobObject } from "../../../durable-objects/job/object";
import { WAITING_BACKSTOP_MS } from "../../../durable-objects/job/runner";
import { config } from "../../../src/config";
import type { Env } from "../../../src/env";
import { jobStub } from "../../../src/jobs/client";
import { hangingCalls, hangingJobInput, runIds, running, settled } from "../support/jobs";
import { editJob, forgetCallInFlight, jobObjects, schedulerObjects } from "../support/objects";

const newRunId = runIds();
const objectFor = (id: string) => jobObjects.get(jobObjects.idFromName(id));
const schedulerOf = (name: string) => schedulerObjects.get(schedulerObjects.idFromName(name));
const linesOf = (name: string) =>
  runInDurableObject(schedulerOf(name), (_o: BackendScheduler, state) => ({
    waiting: state.storage.sql.exec<{ job_id: string }>("SELECT job_id FROM waiting ORDER BY seq").toArray().map((r) => r.job_id),
    slots: state.storage.sql.exec<{ job_id: string }>("SELECT job_id FROM slots ORDER BY job_id").toArray().map((r) => r.job_id),
  }));
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

/** The job's object reads `change(env)` over the test's configuration (`() => ({})` puts it back), as after an operator's deploy. */
const withEnv = (id: string, change: (e: Env) => Partial<Env>) =>
  runInDurableObject(objectFor(id), (o: JobObject) => {
    const room = Reflect.get(o, "room") as { env: Env };
    room.env = { ...env, ...change(env) };
  });

/** The job as after attempts failed on busy-a with these codes (or a `job.retried` between them), every fitting backend tried: its next dispatch finds none left. */
const afterFailures = (id: string, codes: string[]) =>
  editJob(
    id,
    ...codes.map((code): [string, number, string] =>
      code === "job.retried"
        ? ["INSERT INTO events (type, at, data) VALUES ('job.retried', ?, ?)", Date.now(), "{}"]
        : ["INSERT INTO events (type, at, data) VALUES ('attempt.failed', ?, ?)", Date.now(), JSON.stringify({ attempt: 1, backend: "busy-a", code, message: `failed: ${code}` })],
    ),
    ["UPDATE job SET tried = '[\"busy-a\"]', dispatch_at = ?", Date.now()],
  );

/** The job's webhook delivery log. */
const deliveriesOf = async (id: string) => {
  const res = await jobStub(env, id).deliveries("acme");
  return res.ok ? res.deliveries : [];
};

/** A job pinned to one busy backend, queued in its line. */
async function queuedInOneLine(): Promise<string> {
  await clear("busy-a");
  await block("busy-a", "blocker-a");
  const id = newRunId();
  await jobStub(env, id).create(hangingJobInput(id, { backend: "busy-a" }));
  await until("queued in its line", () => row(id), (r) => r.lines.join() === "busy-a");
  return id;
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

  it("does not count time in the line against a run limit: it counts from the start", { timeout: 20_000 }, async () => {
    await clear("busy-a");
    await block("busy-a", "blocker-a");
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { backend: "busy-a", timeout_s: 600, run_timeout_s: 1 }));
    const queued = await until("queued in its line", () => row(id), (r) => r.lines.join() === "busy-a");
    await new Promise((r) => setTimeout(r, 2_000));
    // Twice its run limit in the line: still queued, its deadline its whole life's.
    expect(await row(id)).toMatchObject({ status: "queued", deadline_at: queued.deadline_at });
    await schedulerOf("busy-a").release("blocker-a", "success");
    await until("running", () => row(id), (r) => r.status === "running");
    expect((await settled(id)).error).toEqual({ code: "timeout", message: "the job did not finish within 1 s of starting to run" });
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

  it("asks its backend for a slot once on its way to running: the request sent at its creation is the one its dispatch uses", async () => {
    await clear("busy-a");
    const before = (await schedulerOf("busy-a").status()).requests;
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { backend: "busy-a" }));
    await running(id);
    expect((await linesOf("busy-a")).slots).toEqual([id]);
    expect((await schedulerOf("busy-a").status()).requests - before).toBe(1);
  });

  it("takes a slot granted after the line answered the request made at its creation, by asking again rather than trusting that answer", async () => {
    const id = await queuedInOneLine();
    // As before the first step: no line written, the creation's request answered "queued" and not yet taken up.
    await editJob(id, ["UPDATE job SET waiting_on = NULL, dispatch_at = ?", Date.now()]);
    await runInDurableObject(objectFor(id), (obj: JobObject) => {
      const memory = (obj as unknown as { room: { memory: { joining: ReadonlySet<string> | undefined; opening: unknown } } }).room.memory;
      memory.joining = new Set(["busy-a"]);
      memory.opening = { backend: "busy-a", enqueue: true, answer: Promise.resolve({ status: "queued" }) };
    });
    // The slot frees: the line grants it to the job, which runs now, not when the claim would lapse.
    await schedulerOf("busy-a").release("blocker-a", "success");
    await until("running", () => row(id), (r) => r.status === "running");
    expect((await linesOf("busy-a")).slots).toEqual([id]);
  });

  it("leaves a line it is still joining when it is canceled, so no slot is granted to it there afterwards", async () => {
    const id = await queuedInOneLine();
    await editJob(id, ["UPDATE job SET waiting_on = NULL"]);
    await joining(id, ["busy-a"]);
    await jobStub(env, id).cancel("acme");
    expect((await linesOf("busy-a")).waiting).toEqual([]);
    await schedulerOf("busy-a").release("blocker-a", "success");
    expect((await linesOf("busy-a")).slots).toEqual([]);
    await clear("busy-a");
  });

  it("gives back a slot its creation's request was granted when it is canceled before its first step took it up", async () => {
    const id = await queuedInBothLines();
    // As a job with two backends stands before its first step: in no line, its creation's request
    // (to the first backend, without joining its line) granted a slot, its answer not taken up.
    await schedulerOf("busy-a").release(id, "neutral");
    await schedulerOf("busy-b").release(id, "neutral");
    await editJob(id, ["UPDATE job SET waiting_on = NULL"]);
    await clear("busy-a");
    const granted = await schedulerOf("busy-a").acquire({ backend: "busy-a", jobId: id, tenant: "acme", maxConcurrency: 1, cooldownMs: 30_000, leaseMs: 60_000, enqueue: false });
    expect(granted.status).toBe("granted");
    await runInDurableObject(objectFor(id), (obj: JobObject) => {
      (obj as unknown as { room: { memory: { opening: unknown } } }).room.memory.opening = { backend: "busy-a", enqueue: false, answer: Promise.resolve(granted) };
    });
    await jobStub(env, id).cancel("acme");
    // The slot is free for the backend's next job at once, not when the lease would lapse.
    expect((await linesOf("busy-a")).slots).toEqual([]);
  });

  it("reads a line kept by the previous version (one plain name) as a one-line list", async () => {
    const id = await queuedInBothLines();
    await editJob(id, ["UPDATE job SET waiting_on = 'busy-a'"]);
    expect(await jobStub(env, id).wake("busy-b")).toBe(false);
    expect(await jobStub(env, id).wake("busy-a")).toBe(true);
  });

  it("waits for its wake-up alone when only one backend can run it: no re-check before the long backstop", async () => {
    const before = Date.now();
    const id = await queuedInOneLine();
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
    await forgetCallInFlight(id);
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

  it("after a restart lost its call on a backend since taken out of BACKENDS, waits as for one that cannot be asked, rather than run it elsewhere", async () => {
    await block("busy-b", "blocker-b");
    const id = newRunId();
    await jobStub(env, id).create(twoLinesJob(id));
    await running(id);
    await forgetCallInFlight(id);
    // The operator's change: busy-a renamed (its GPU may still run the call), busy-b free now.
    await clear("busy-b");
    await withEnv(id, (e) => ({ BACKENDS: JSON.stringify(config.backends(e).filter((b) => b.name !== "busy-a")) }));
    await runDurableObjectAlarm(objectFor(id));
    await runDurableObjectAlarm(objectFor(id));
    const events = await jobStub(env, id).events("acme");
    const list = events.ok ? events.events : [];
    expect(list.filter((e) => e.type === "attempt.lost").map((e) => e.data.found)).toEqual(["the backend is no longer configured: waiting until the call would have ended"]);
    expect(list.filter((e) => e.type === "attempt.started")).toHaveLength(1);
    await withEnv(id, () => ({}));
  });

  it("starts no work on its backend while what its end needs cannot be read (a bad RETENTION_S): the step fails, and is tried again later, not at once", async () => {
    const id = newRunId();
    const calls = await hangingCalls("/sdapi/v1/img2img");
    await withEnv(id, () => ({ RETENTION_S: "a week" }));
    await jobStub(env, id).create(hangingJobInput(id));
    const alarm = () => runInDurableObject(objectFor(id), (_o: JobObject, state) => state.storage.getAlarm());
    await until("its failed step's alarm", alarm, (at) => at !== null && at > Date.now() + 5_000);
    expect(await hangingCalls("/sdapi/v1/img2img")).toBe(calls);
    expect(await row(id)).toMatchObject({ status: "queued" });
    await withEnv(id, () => ({}));
  });

  it("fails with invalid_request only when every backend refused what the request names; a backend that could not be reached leaves it backend_failed", async () => {
    const endedWith = async (codes: string[]) => {
      const id = await queuedInOneLine();
      await afterFailures(id, codes);
      await runDurableObjectAlarm(objectFor(id));
      return (await settled(id)).error?.code;
    };
    expect(await endedWith(["invalid_request"])).toBe("invalid_request");
    expect(await endedWith(["backend_unavailable", "invalid_request"])).toBe("backend_failed");
    expect(await endedWith(["backend_busy", "invalid_request"])).toBe("invalid_request");
    // What failed before a retry (RunPod's /retry) is not this run's.
    expect(await endedWith(["backend_unavailable", "job.retried", "invalid_request"])).toBe("invalid_request");
  });

  it("asks a backend that only refused it for now (429s) again, after a wait, rather than fail when no other is left", async () => {
    const id = await queuedInOneLine();
    await afterFailures(id, ["backend_busy"]);
    await runDurableObjectAlarm(objectFor(id));
    const after = await runInDurableObject(objectFor(id), (_o: JobObject, state) => state.storage.sql.exec<{ status: string; tried: string; dispatch_at: number | null }>("SELECT status, tried, dispatch_at FROM job").one());
    expect(after).toMatchObject({ status: "queued", tried: "[]" });
    expect(after.dispatch_at).toBeGreaterThan(Date.now());
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
      () => deliveriesOf(id),
      (d) => d.some((x) => x.type === "job.started"),
    );
    expect(rows.map((r) => r.type)).toEqual(["job.started"]);
    expect(await row(id)).toMatchObject({ status: "running" });
    await jobStub(env, id).cancel("acme");
    const after = await until(
      "the job.canceled delivery",
      () => deliveriesOf(id),
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

describe("a call still out when its job ends", () => {
  it("keeps its slot renewed until the call ends, as a canceled Cerebrium call runs on", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    await running(id);
    expect((await jobStub(env, id).cancel("acme")).ok).toBe(true);
    // The hanging backend took the interrupt and still runs the call: its slot is held.
    const lease = () => runInDurableObject(schedulerOf("hang"), (_o: BackendScheduler, state) => state.storage.sql.exec<{ lease_until: number }>("SELECT lease_until FROM slots WHERE job_id = ?", id).toArray()[0]?.lease_until);
    expect(await lease()).toBeDefined();
    // A lease about to lapse, and the job's renewal due: the ended job's alarm renews it.
    await runInDurableObject(schedulerOf("hang"), (_o: BackendScheduler, state) => void state.storage.sql.exec("UPDATE slots SET lease_until = ? WHERE job_id = ?", Date.now() + 1_000, id));
    await runInDurableObject(objectFor(id), (o: JobObject) => void ((o as unknown as { room: { memory: { renewedAt: number } } }).room.memory.renewedAt = 0));
    expect(await runDurableObjectAlarm(objectFor(id))).toBe(true);
    expect(await lease()).toBeGreaterThan(Date.now() + 30_000);
  });
});

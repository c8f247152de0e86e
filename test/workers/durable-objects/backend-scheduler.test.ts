import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CIRCUIT_THRESHOLD } from "../../../durable-objects/backend-circuit";
import { CLAIM_MS, SCATTER_BATCH, type BackendScheduler } from "../../../durable-objects/backend-scheduler";
import type { JobObject } from "../../../durable-objects/job/object";
import { jobObjects, schedulerObjects } from "../support/objects";

/** Each test gets its own backend (storage is shared within a file). */
const scheduler = (name: string) => schedulerObjects.get(schedulerObjects.idFromName(name));
const names = new WeakMap<object, string>();
const named = (name: string) => {
  const s = scheduler(name);
  names.set(s, name);
  return s;
};
const ask = (s: ReturnType<typeof scheduler>, jobId: string, tenant = "acme", enqueue = true, maxConcurrency = 2) =>
  s.acquire({ backend: names.get(s) ?? "unnamed", jobId, tenant, maxConcurrency, cooldownMs: 30_000, leaseMs: 60_000, enqueue });

/**
 * A job object in a given state, written straight into its storage (no alarm, so it does nothing
 * by itself): `wanting` has its generation under way on `backend`, so a wake-up from there finds it
 * wanted; `ended` has finished.
 */
async function jobIn(id: string, state: "wanting" | "ended", backend: string): Promise<void> {
  await runInDurableObject(jobObjects.get(jobObjects.idFromName(id)), (o: JobObject, st) => {
    // A job object makes its tables at its first write (its ledger's `sql` getter); reads alone make none.
    void (o as unknown as { ledger: { sql: SqlStorage } }).ledger.sql;
    const now = Date.now();
    st.storage.sql.exec(
      "INSERT INTO job (id, tenant, status, input, created_at, deadline_at) VALUES (?, 'acme', ?, '{}', ?, ?)",
      id,
      state === "wanting" ? "running" : "succeeded",
      now,
      now + 600_000,
    );
    if (state === "wanting") st.storage.sql.exec("INSERT INTO attempts (n, backend, state, token, started_at) VALUES (1, ?, 'pending', 't', ?)", backend, now);
  });
}
const slotsOf = (s: ReturnType<typeof scheduler>) =>
  runInDurableObject(s, (_o: BackendScheduler, st) => st.storage.sql.exec<{ job_id: string; lease_until: number }>("SELECT job_id, lease_until FROM slots ORDER BY job_id").toArray());

/** The scheduler's wake-ups to jobs (its private `ask`), recorded instead of sent: each answers `answer`. */
function recordWakes(o: BackendScheduler, answer: boolean | undefined): string[] {
  const woken: string[] = [];
  (o as unknown as { ask: (jobId: string) => Promise<boolean | undefined> }).ask = (jobId) => {
    woken.push(jobId);
    return Promise.resolve(answer);
  };
  return woken;
}
/** The rows every SQL statement run while `fn` runs read, summed (the cost of a grant, not its time). */
async function rowsReadBy(st: DurableObjectState, fn: () => Promise<unknown>): Promise<number> {
  const sql = st.storage.sql;
  const exec = sql.exec.bind(sql);
  const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
  sql.exec = ((query: string, ...bindings: unknown[]) => {
    const c = exec(query, ...bindings);
    cursors.push(c);
    return c;
  }) as typeof sql.exec;
  try {
    await fn();
  } finally {
    sql.exec = exec;
  }
  return cursors.reduce((n, c) => n + c.rowsRead, 0);
}
/** Opens a backend's circuit: CIRCUIT_THRESHOLD failures in a row (two tenants'), the last by `last`'s slot, while `line` waits. */
async function openWithLine(s: ReturnType<typeof scheduler>, line: string[], maxConcurrency: number): Promise<void> {
  for (let i = 1; i < CIRCUIT_THRESHOLD; i++) {
    await ask(s, `f${i}`, "globex", true, maxConcurrency);
    await s.release(`f${i}`, "failure");
  }
  for (let i = 0; i < maxConcurrency; i++) await ask(s, `last${i}`, "acme", true, maxConcurrency);
  for (const j of line) expect(await ask(s, j, j.startsWith("g") ? "globex" : "acme", true, maxConcurrency)).toMatchObject({ status: "queued" });
}

describe("backend scheduler", () => {
  it("never grants more than max_concurrency slots and hands a freed slot to the next in line", async () => {
    const s = named("cap");
    await jobIn("j3", "wanting", "cap");
    expect(await ask(s, "j1")).toMatchObject({ status: "granted" });
    expect(await ask(s, "j2")).toMatchObject({ status: "granted" });
    expect(await ask(s, "j3")).toMatchObject({ status: "queued" });
    expect(await ask(s, "j4", "acme", false)).toMatchObject({ status: "busy" });
    expect(await s.status()).toMatchObject({ active: 2, waiting: 1 });
    // Asking again while holding a slot renews it rather than taking a second one.
    expect(await ask(s, "j1")).toMatchObject({ status: "granted" });
    expect(await s.status()).toMatchObject({ active: 2 });
    await s.release("j1", "success");
    expect(await s.status()).toMatchObject({ active: 2, waiting: 0 });
    expect(await ask(s, "j3")).toMatchObject({ status: "granted" });
  });

  it("lets a newcomer wait behind a queue instead of taking a freed slot", async () => {
    const s = named("fifo");
    await jobIn("a2", "wanting", "fifo");
    await ask(s, "a1", "acme", true, 1);
    await ask(s, "a2", "acme", true, 1);
    await s.release("a1", "success");
    // a2 was granted on release; b1 arriving now must wait.
    expect(await ask(s, "b1", "globex", true, 1)).toMatchObject({ status: "queued" });
  });

  it("serves a tenant's single job before another tenant's burst", async () => {
    const s = named("fair");
    await jobIn("b1", "wanting", "fair");
    for (const j of ["a1", "a2", "a3", "a4", "a5"]) await ask(s, j, "acme", true, 1);
    await ask(s, "b1", "globex", true, 1);
    await s.release("a1", "success");
    // globex has never been served, so its job goes ahead of acme's queued burst.
    expect(await ask(s, "b1", "globex", true, 1)).toMatchObject({ status: "granted" });
    expect(await ask(s, "a2", "acme", true, 1)).toMatchObject({ status: "queued" });
  });

  it("opens the circuit after consecutive failures of more than one tenant, then closes it after one successful probe", async () => {
    const s = named("flappy");
    for (let i = 0; i < CIRCUIT_THRESHOLD; i++) {
      await ask(s, `f${i}`, i % 2 ? "globex" : "acme");
      await s.release(`f${i}`, "failure");
    }
    expect(await ask(s, "x", "acme", false)).toMatchObject({ status: "open" });
    await runInDurableObject(s, (_o: BackendScheduler, state) => {
      state.storage.sql.exec("UPDATE health SET open_until = ?", Date.now() - 1);
    });
    expect(await ask(s, "probe")).toMatchObject({ status: "granted", probe: true });
    // Only one probe at a time while half-open.
    expect(await ask(s, "other", "acme", false)).toMatchObject({ status: "open" });
    await s.release("probe", "success");
    expect(await s.status()).toMatchObject({ consecutive_failures: 0, open_until: null });
    expect(await ask(s, "after")).toMatchObject({ status: "granted", probe: false });
  });

  it("lets a reopening circuit's probe into a free slot only: a healthy generation may hold them all", async () => {
    const s = named("probe-full");
    // A long generation holds the backend's one slot while other attempts fail and open the circuit.
    expect(await ask(s, "long", "acme", true, 1)).toMatchObject({ status: "granted" });
    for (let i = 0; i < CIRCUIT_THRESHOLD; i++) {
      await runInDurableObject(s, (_o: BackendScheduler, st) => {
        st.storage.sql.exec("INSERT INTO slots (job_id, tenant, lease_until, probe) VALUES (?, ?, ?, 0)", `f${i}`, i % 2 ? "globex" : "acme", Date.now() + 60_000);
      });
      await s.release(`f${i}`, "failure");
    }
    await runInDurableObject(s, (_o: BackendScheduler, st) => {
      st.storage.sql.exec("UPDATE health SET open_until = ?", Date.now() - 1);
    });
    expect(await ask(s, "probe", "acme", false, 1)).toMatchObject({ status: "open" });
    expect(await s.status()).toMatchObject({ active: 1 });
    // The slot frees (and its success closes the circuit): the next goes.
    await s.release("long", "success");
    expect(await ask(s, "probe", "acme", false, 1)).toMatchObject({ status: "granted" });
  });

  it("never opens the circuit for one tenant's failures alone, however many: they may be of its own making", async () => {
    const s = named("one-tenant-fails");
    for (let i = 0; i < CIRCUIT_THRESHOLD * 3; i++) {
      await ask(s, `own${i}`);
      await s.release(`own${i}`, "failure");
    }
    expect(await s.status()).toMatchObject({ circuit: "closed", consecutive_failures: CIRCUIT_THRESHOLD * 3 });
    // One failure of another tenant's does not close the backend to everyone on the strength of acme's nine.
    expect(await ask(s, "theirs0", "globex", false)).toMatchObject({ status: "granted" });
    await s.release("theirs0", "failure");
    expect(await s.status()).toMatchObject({ circuit: "closed" });
    // Half as many as acme's, though: the trouble is the backend's, and the circuit opens.
    for (let i = 1; i < Math.ceil((CIRCUIT_THRESHOLD * 3) / 2); i++) {
      expect(await s.status()).toMatchObject({ circuit: "closed" });
      await ask(s, `theirs${i}`, "globex", false);
      await s.release(`theirs${i}`, "failure");
    }
    expect(await s.status()).toMatchObject({ circuit: "open" });
  });

  it("opens the circuit of a backend that cannot be reached by one tenant's attempts alone: no request causes that", async () => {
    const s = named("unreachable-one-tenant");
    for (let i = 0; i < CIRCUIT_THRESHOLD; i++) {
      await ask(s, `down${i}`);
      await s.release(`down${i}`, "failure", true);
    }
    expect(await s.status()).toMatchObject({ circuit: "open" });
  });

  it("frees a slot given back at a 200's headers at once, and counts the verdict that follows the body", async () => {
    const s = named("hollow");
    await jobIn("hollow-next", "wanting", "hollow");
    await ask(s, "first", "acme", true, 1);
    expect(await ask(s, "hollow-next", "acme", true, 1)).toMatchObject({ status: "queued" });
    await s.release("first", "later");
    // The next job has the slot before the first one's body is read.
    expect((await slotsOf(s)).map((r) => r.job_id)).toEqual(["hollow-next"]);
    expect((await s.status()).recent).toMatchObject({ jobs: 0 });
    // That body held no images: a failure, for the circuit and the success rate alike.
    await s.judge("first", "failure", "acme");
    await s.release("hollow-next", "later");
    await s.judge("hollow-next", "failure", "globex");
    await ask(s, "third", "acme", true, 1);
    await s.release("third", "later");
    await s.judge("third", "failure", "acme");
    const status = await s.status();
    expect(status.recent).toMatchObject({ jobs: 3, success_rate: 0 });
    expect(status.consecutive_failures).toBe(CIRCUIT_THRESHOLD);
    expect(status.circuit).toBe("open");
  });

  it("reclaims a slot whose lease expired and gives it to a waiting job on its alarm", async () => {
    const s = named("lease");
    await jobIn("waiter", "wanting", "lease");
    await ask(s, "holder", "acme", true, 1);
    await ask(s, "waiter", "acme", true, 1);
    await runInDurableObject(s, (_o: BackendScheduler, state) => {
      state.storage.sql.exec("UPDATE slots SET lease_until = ? WHERE job_id = 'holder'", Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(s)).toBe(true);
    expect(await s.status()).toMatchObject({ active: 1, waiting: 0 });
    expect(await ask(s, "waiter", "acme", true, 1)).toMatchObject({ status: "granted" });
  });

  it("keeps a lapsed lease while its job's attempt still holds the backend (renewals stop while the gateway is down), then lets it go", async () => {
    const s = named("outage");
    await jobIn("outage-busy", "wanting", "outage");
    await jobIn("outage-behind", "wanting", "outage");
    expect(await ask(s, "outage-busy", "acme", true, 1)).toMatchObject({ status: "granted" });
    expect(await ask(s, "outage-behind", "acme", true, 1)).toMatchObject({ status: "queued" });
    const lapse = (id: string) =>
      runInDurableObject(s, (_o: BackendScheduler, state) => {
        state.storage.sql.exec("UPDATE slots SET lease_until = ? WHERE job_id = ?", Date.now() - 1, id);
      });
    await lapse("outage-busy");
    expect(await runDurableObjectAlarm(s)).toBe(true);
    // Its generation may still run on the GPU: the slot stays taken, the next job waits.
    expect((await slotsOf(s)).map((r) => r.job_id)).toEqual(["outage-busy"]);
    expect((await slotsOf(s))[0]?.lease_until).toBeGreaterThan(Date.now());
    expect(await s.status()).toMatchObject({ active: 1, waiting: 1 });
    // Once the job no longer holds it (it ended), a lapsed lease goes to the line.
    await runInDurableObject(jobObjects.get(jobObjects.idFromName("outage-busy")), (o: JobObject, st) => {
      st.storage.sql.exec("UPDATE job SET status = 'succeeded'");
      // Written behind the ledger's back: its kept row is dropped.
      (o as unknown as { ledger: { forget(): void } }).ledger.forget();
    });
    await lapse("outage-busy");
    expect(await runDurableObjectAlarm(s)).toBe(true);
    expect((await slotsOf(s)).map((r) => r.job_id)).toEqual(["outage-behind"]);
  });

  it("reports its circuit as closed, open, then half_open once the cool-down is over", async () => {
    const s = named("circuit-view");
    expect(await s.status()).toMatchObject({ circuit: "closed", open_until: null });
    for (let i = 0; i < CIRCUIT_THRESHOLD; i++) {
      await ask(s, `c${i}`, i % 2 ? "globex" : "acme");
      await s.release(`c${i}`, "failure");
    }
    expect(await s.status()).toMatchObject({ circuit: "open", open_until: expect.any(Number) });
    await runInDurableObject(s, (_o: BackendScheduler, state) => {
      state.storage.sql.exec("UPDATE health SET open_until = ?", Date.now() - 1);
    });
    expect(await s.status()).toMatchObject({ circuit: "half_open" });
  });

  // 360 calls into the object: seconds on a loaded machine.
  it("keeps success rate and median run time over the last 100 decisive attempts", { timeout: 15_000 }, async () => {
    const s = named("recent");
    expect((await s.status()).recent).toEqual({ jobs: 0, success_rate: null, run_ms_p50: null });
    // 120 attempts: the first 20 failed, the last 100 succeeded except every tenth; cancels do not count.
    for (let i = 0; i < 120; i++) {
      await ask(s, `r${i}`, "acme", true, 1000);
      await s.release(`r${i}`, i < 20 || i % 10 === 0 ? "failure" : "success");
      // A failure streak would open the circuit; these figures are about the record, not the breaker.
      await runInDurableObject(s, (_o: BackendScheduler, state) => {
        state.storage.sql.exec("UPDATE health SET failures = 0, open_until = NULL");
      });
    }
    await ask(s, "canceled", "acme", true, 1000);
    await s.release("canceled", "neutral");
    await runInDurableObject(s, (_o: BackendScheduler, state) => {
      state.storage.sql.exec("UPDATE recent SET run_ms = CAST(substr(job_id, 2) AS INTEGER) WHERE outcome = 'success'");
    });
    const recent = (await s.status()).recent;
    expect(recent.jobs).toBe(100);
    expect(recent.success_rate).toBeCloseTo(0.9);
    // Successes among r20..r119 are 90 values; their median is 69 or 71 (r70 failed).
    expect(recent.run_ms_p50).toBe(69);
  });

  it("hands a slot granted to a job that has ended to the next in line at once", async () => {
    const s = named("stale-head");
    await jobIn("stale", "ended", "stale-head");
    await jobIn("fresh", "wanting", "stale-head");
    await ask(s, "holder", "acme", true, 1);
    await ask(s, "stale", "acme", true, 1);
    await ask(s, "fresh", "acme", true, 1);
    await s.release("holder", "success");
    // The ended job at the head of the line said no: its slot went straight to the next one.
    expect((await slotsOf(s)).map((r) => r.job_id)).toEqual(["fresh"]);
    expect(await s.status()).toMatchObject({ active: 1, waiting: 0 });
  });

  it("hands a slot to its next job at once when the head of its line is taking up another line's grant", async () => {
    const s = named("second-grant");
    // Waits in both lines and is taking up the grant of "first-grant" (as its wake-up left it).
    await runInDurableObject(jobObjects.get(jobObjects.idFromName("both-lines")), (o: JobObject, st) => {
      void (o as unknown as { ledger: { sql: SqlStorage } }).ledger.sql;
      const now = Date.now();
      st.storage.sql.exec(
        "INSERT INTO job (id, tenant, status, input, created_at, deadline_at, waiting_on) VALUES ('both-lines', 'acme', 'queued', '{}', ?, ?, ?)",
        now,
        now + 600_000,
        JSON.stringify(["first-grant", "second-grant"]),
      );
      (o as unknown as { room: { memory: { grantedBy: string | undefined } } }).room.memory.grantedBy = "first-grant";
    });
    await jobIn("behind", "wanting", "second-grant");
    await ask(s, "holder", "acme", true, 1);
    await ask(s, "both-lines", "acme", true, 1);
    await ask(s, "behind", "acme", true, 1);
    await s.release("holder", "success");
    // Not held as a claim for a job that runs elsewhere: the next in line has it now.
    expect((await slotsOf(s)).map((r) => r.job_id)).toEqual(["behind"]);
    expect(await s.status()).toMatchObject({ active: 1, waiting: 0 });
  });

  it("keeps a slot its job took while the wake-up was out, even when the job's answer is no", async () => {
    const s = named("taken-meanwhile");
    await ask(s, "holder", "acme", true, 1);
    await ask(s, "taker", "acme", true, 1);
    await runInDurableObject(s, async (o: BackendScheduler) => {
      // The job waits in two lines and was woken by the other one first: it answers this wake-up
      // no, but its dispatch asks here first and takes the claim before that answer arrives.
      (o as unknown as { ask: (jobId: string) => Promise<boolean | undefined> }).ask = async (jobId) => {
        expect(await o.acquire({ backend: "taken-meanwhile", jobId, tenant: "acme", maxConcurrency: 1, cooldownMs: 30_000, leaseMs: 60_000, enqueue: false })).toMatchObject({ status: "granted" });
        return false;
      };
      await o.release("holder", "success");
    });
    // Its generation runs here: the slot stays its own, and nobody else gets one.
    expect((await slotsOf(s)).map((r) => r.job_id)).toEqual(["taker"]);
    expect(await ask(s, "newcomer", "acme", false, 1)).toMatchObject({ status: "busy" });
  });

  it("grants from the line only a short claim, which lapses if the job never takes it", async () => {
    const s = named("claim");
    await jobIn("taker", "wanting", "claim");
    await ask(s, "holder", "acme", true, 1);
    await ask(s, "taker", "acme", true, 1);
    await s.release("holder", "success");
    const [claim] = await slotsOf(s);
    expect(claim?.lease_until).toBeLessThanOrEqual(Date.now() + CLAIM_MS);
    // Taking it (the job's next acquire) turns the claim into a full lease.
    expect(await ask(s, "taker", "acme", true, 1)).toMatchObject({ status: "granted" });
    expect((await slotsOf(s))[0]?.lease_until).toBeGreaterThan(Date.now() + CLAIM_MS);
  });

  it("keeps the slot of a generation that may still run under another name, until it cannot", async () => {
    const s = named("orphan");
    await ask(s, "lost", "acme", true, 1);
    await s.orphan("lost", 1, Date.now(), 60_000);
    // The job itself holds nothing now and waits like anyone else: no second run beside the first.
    expect(await ask(s, "lost", "acme", true, 1)).toMatchObject({ status: "queued" });
    expect((await slotsOf(s)).map((r) => r.job_id)).toEqual(["lost#1"]);
    // Nothing has run here yet: the backend's timeout is the only bound.
    expect((await slotsOf(s))[0]?.lease_until).toBeGreaterThan(Date.now() + 50_000);
  });

  it("records the verdict of an attempt whose slot it keeps under another name (a timed-out call the backend would not stop)", async () => {
    const s = named("orphan-verdict");
    await ask(s, "slow", "acme", true, 1);
    await s.orphan("slow", 1, Date.now(), 60_000, "failure");
    expect((await slotsOf(s)).map((r) => r.job_id)).toEqual(["slow#1"]);
    // The attempt's own release finds no slot under its name, and records nothing twice.
    await s.release("slow", "failure");
    expect((await s.status()).recent).toMatchObject({ jobs: 1, success_rate: 0 });
  });

  it("holds an orphaned generation's slot until the backend's timeout after it began, however short recent runs were", async () => {
    const s = named("orphan-estimate");
    await ask(s, "done", "acme", true, 1);
    await s.release("done", "success");
    await runInDurableObject(s, (_o: BackendScheduler, state) => {
      state.storage.sql.exec("UPDATE recent SET run_ms = 9000 WHERE job_id = 'done'");
    });
    await ask(s, "lost", "acme", true, 1);
    const started = Date.now();
    await s.orphan("lost", 1, started, 600_000);
    const [slot] = await slotsOf(s);
    expect(slot?.job_id).toBe("lost#1");
    expect(slot?.lease_until).toBe(started + 600_000);
  });

  it("sets its alarm for an orphaned generation's end, with nobody waiting, and gives the slot back then", async () => {
    const s = named("orphan-alarm");
    await ask(s, "lost", "acme", true, 1);
    // Began 59 s ago on a backend with a 60 s timeout: it cannot run past a second from now, well
    // before the 60 s lease the grant set the alarm for.
    const started = Date.now() - 59_000;
    await s.orphan("lost", 1, started, 60_000);
    const alarm = await runInDurableObject(s, (_o: BackendScheduler, st) => st.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm ?? Infinity).toBeLessThanOrEqual(started + 60_000 + 1);
    await runInDurableObject(s, (_o: BackendScheduler, st) => {
      st.storage.sql.exec("UPDATE slots SET lease_until = ? WHERE job_id = 'lost#1'", Date.now() - 1);
    });
    await runDurableObjectAlarm(s);
    expect(await slotsOf(s)).toEqual([]);
    expect(await ask(s, "next", "acme", true, 1)).toMatchObject({ status: "granted" });
  });

  it("keeps its line when the circuit opens and tells it in bounded batches, one per alarm, so jobs can look elsewhere", async () => {
    const s = named("scatter");
    const line = Array.from({ length: 2 * SCATTER_BATCH + 3 }, (_, i) => `w${i}`);
    await openWithLine(s, line, 1);
    await runInDurableObject(s, async (o: BackendScheduler) => {
      const woken = recordWakes(o, undefined);
      await o.release("last0", "failure");
      // Opening wakes nobody by itself, and nobody loses their place.
      expect(woken).toEqual([]);
      expect(await o.status()).toMatchObject({ circuit: "open", waiting: line.length });
      const batches: string[][] = [];
      for (let i = 0; i < 5 && woken.length < line.length; i++) {
        const from = woken.length;
        // A batch's wake-ups all go out before the alarm's first await, so this is one alarm's batch.
        const run = o.alarm();
        batches.push(woken.slice(from));
        await run;
      }
      expect(batches.map((b) => b.length)).toEqual([SCATTER_BATCH, SCATTER_BATCH, 3]);
      // In order of arrival, each job told once; a job with nowhere else to go is still in line.
      expect(woken).toEqual(line);
      expect(await o.status()).toMatchObject({ waiting: line.length });
    });
  });

  it("offers a reopening circuit's probe to the head of its line only, then, once closed, as many slots as are free", async () => {
    const s = named("reopen");
    const line = Array.from({ length: 10 }, (_, i) => `r${i}`);
    await openWithLine(s, line, 2);
    await runInDurableObject(s, async (o: BackendScheduler, st) => {
      const woken = recordWakes(o, true);
      await o.release("last0", "failure");
      await o.release("last1", "neutral");
      for (let i = 0; i < 5; i++) await o.alarm();
      woken.length = 0;
      // The cool-down is over: half-open.
      st.storage.sql.exec("UPDATE health SET open_until = ?", Date.now() - 1);
      await o.alarm();
      expect(woken).toEqual(["r0"]);
      expect((await o.status()).waiting).toBe(line.length - 1);
      // The probe succeeded: the circuit closes and the two free slots go to the next two.
      await o.release("r0", "success");
      expect(woken).toEqual(["r0", "r1", "r2"]);
      expect(await o.status()).toMatchObject({ circuit: "closed", active: 2, waiting: line.length - 3 });
    });
  });

  it("puts a job whose claim lapsed (its wake-up lost) back in line, and gives the slot to the next in line on its alarm", async () => {
    const s = named("lapse");
    await ask(s, "holder", "acme", true, 1);
    for (const j of ["l1", "l2"]) await ask(s, j, "acme", true, 1);
    await runInDurableObject(s, async (o: BackendScheduler, st) => {
      const woken = recordWakes(o, undefined);
      await o.release("holder", "success");
      expect(woken).toEqual(["l1"]);
      st.storage.sql.exec("UPDATE slots SET lease_until = ? WHERE job_id = 'l1'", Date.now() - 1);
      await o.alarm();
      // The slot went to the head of the line; the job that never took its claim waits behind it.
      expect(woken).toEqual(["l1", "l2"]);
      expect(await o.status()).toMatchObject({ active: 1, waiting: 1 });
      await o.release("l2", "success");
      expect(woken).toEqual(["l1", "l2", "l1"]);
    });
  });

  it("takes turns between tenants whatever the size of their bursts, first in first out within each", async () => {
    const s = named("turns");
    await ask(s, "holder", "initech", true, 1);
    for (const j of ["a1", "a2", "a3", "a4"]) await ask(s, j, "acme", true, 1);
    for (const j of ["g1", "g2"]) await ask(s, j, "globex", true, 1);
    await ask(s, "u1", "umbrella", true, 1);
    await runInDurableObject(s, async (o: BackendScheduler) => {
      const woken = recordWakes(o, true);
      let holder = "holder";
      for (let i = 0; i < 7; i++) {
        await o.release(holder, "success");
        holder = woken.at(-1) ?? "";
      }
      expect(woken).toEqual(["a1", "g1", "u1", "a2", "g2", "a3", "a4"]);
    });
  });

  // 2 × 200 calls into the object: seconds on a loaded machine.
  it("hands out a slot and counts its line reading as many rows with 200 jobs waiting as with 2", { timeout: 30_000 }, async () => {
    const cost = async (name: string, waiting: number): Promise<number> => {
      const s = named(name);
      await ask(s, "holder", "acme", true, 1);
      for (let i = 0; i < waiting; i++) await ask(s, `q${i}`, i % 2 ? "acme" : "globex", true, 1);
      return runInDurableObject(s, async (o: BackendScheduler, st) => {
        recordWakes(o, true);
        return rowsReadBy(st, async () => {
          await o.release("holder", "success");
          await o.status();
        });
      });
    };
    const small = await cost("rows-small", 2);
    const large = await cost("rows-large", 200);
    expect(large).toBeLessThanOrEqual(small);
  });
});

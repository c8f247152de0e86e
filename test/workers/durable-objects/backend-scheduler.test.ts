import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CIRCUIT_THRESHOLD } from "../../../durable-objects/backend-circuit";
import { ORPHAN_RECHECK_MS } from "../../../durable-objects/backend-leases";
import { CLAIM_MS, type BackendScheduler } from "../../../durable-objects/backend-scheduler";
import type { JobObject } from "../../../durable-objects/job/object";
import { jobObjects } from "../support/objects";
import { ask, named, recordWakes, type SchedulerStub } from "../support/scheduler";

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
const slotsOf = (s: SchedulerStub) =>
  runInDurableObject(s, (_o: BackendScheduler, st) => st.storage.sql.exec<{ job_id: string; lease_until: number }>("SELECT job_id, lease_until FROM slots ORDER BY job_id").toArray());

/** The end of the time an orphaned generation's slot may be kept (the backend's timeout after the call began). */
const orphanUntil = (s: SchedulerStub, slotId: string) =>
  runInDurableObject(s, (_o: BackendScheduler, st) => st.storage.sql.exec<{ until: number }>("SELECT until FROM orphans WHERE slot_id = ?", slotId).toArray()[0]?.until);

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

describe("backend scheduler", () => {
  it("hands the slots a raised max_concurrency adds to the jobs already in line, at the first request that carries it", async () => {
    const s = named("raised");
    await jobIn("r2", "wanting", "raised");
    await jobIn("r3", "wanting", "raised");
    expect(await ask(s, "r1", "acme", true, 1)).toMatchObject({ status: "granted" });
    expect(await ask(s, "r2", "acme", true, 1)).toMatchObject({ status: "queued" });
    expect(await ask(s, "r3", "acme", true, 1)).toMatchObject({ status: "queued" });
    await runInDurableObject(s, (o: BackendScheduler) => void recordWakes(o, true));
    // The deploy's first request is a newcomer's: it waits behind them, and they take the two new slots.
    expect(await ask(s, "r4", "acme", true, 3)).toMatchObject({ status: "queued" });
    expect((await slotsOf(s)).map((r) => r.job_id)).toEqual(["r1", "r2", "r3"]);
  });

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
    expect(await orphanUntil(s, "lost#1")).toBeGreaterThan(Date.now() + 50_000);
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
    expect(await orphanUntil(s, "lost#1")).toBe(started + 600_000);
  });

  it("asks about an orphaned generation while it may run, and gives its slot to the line once the backend no longer runs it", async () => {
    const s = named("orphan-recheck");
    await jobIn("orphan-next", "wanting", "orphan-recheck");
    await ask(s, "left", "acme", true, 1);
    await s.orphan("left", 1, Date.now(), 600_000);
    expect(await ask(s, "orphan-next", "acme", true, 1)).toMatchObject({ status: "queued" });
    // Not held blind to the backend's timeout: asked again within ORPHAN_RECHECK_MS.
    expect((await slotsOf(s))[0]?.lease_until).toBeLessThanOrEqual(Date.now() + ORPHAN_RECHECK_MS);
    const asked: string[] = [];
    const lapseAndAsk = (runs: boolean) =>
      runInDurableObject(s, async (o: BackendScheduler, st) => {
        (o as unknown as { leases: { holds: (slotId: string) => Promise<boolean | undefined> } }).leases.holds = (slotId) => {
          asked.push(slotId);
          return Promise.resolve(runs);
        };
        st.storage.sql.exec("UPDATE slots SET lease_until = ? WHERE job_id = 'left#1'", Date.now() - 1);
        await o.alarm();
      });
    // The backend still runs it (or cannot be asked): the slot stays taken, asked again later.
    await lapseAndAsk(true);
    expect(asked).toEqual(["left#1"]);
    expect((await slotsOf(s)).map((r) => r.job_id)).toEqual(["left#1"]);
    expect((await slotsOf(s))[0]?.lease_until).toBeGreaterThan(Date.now());
    expect(await s.status()).toMatchObject({ active: 1, waiting: 1 });
    // It no longer runs there: the slot goes to the next in line at once, long before the timeout.
    await lapseAndAsk(false);
    expect(asked).toEqual(["left#1", "left#1"]);
    expect((await slotsOf(s)).map((r) => r.job_id)).toEqual(["orphan-next"]);
    expect(await orphanUntil(s, "left#1")).toBeUndefined();
  });

  it("never keeps an orphaned generation's slot past the backend's timeout after it began, whatever the job says", async () => {
    const s = named("orphan-bound");
    await ask(s, "stuck", "acme", true, 1);
    // Began 50 s ago on a backend with a 60 s timeout: asked about at most until then.
    const started = Date.now() - 50_000;
    await s.orphan("stuck", 1, started, 60_000);
    await runInDurableObject(s, async (o: BackendScheduler, st) => {
      (o as unknown as { leases: { holds: () => Promise<boolean | undefined> } }).leases.holds = () => Promise.resolve(true);
      st.storage.sql.exec("UPDATE slots SET lease_until = ? WHERE job_id = 'stuck#1'", Date.now() - 1);
      await o.alarm();
    });
    expect((await slotsOf(s))[0]?.lease_until).toBeLessThanOrEqual(started + 60_000);
    await runInDurableObject(s, (_o: BackendScheduler, st) => {
      st.storage.sql.exec("UPDATE orphans SET until = ? WHERE slot_id = 'stuck#1'", Date.now() - 1);
      st.storage.sql.exec("UPDATE slots SET lease_until = ? WHERE job_id = 'stuck#1'", Date.now() - 1);
    });
    await runDurableObjectAlarm(s);
    expect(await slotsOf(s)).toEqual([]);
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

import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CIRCUIT_THRESHOLD } from "../../../durable-objects/backend-circuit";
import { SCATTER_BATCH, type BackendScheduler } from "../../../durable-objects/backend-scheduler";
import { ask, named, recordWakes, type SchedulerStub } from "../support/scheduler";

/** Opens a backend's circuit: CIRCUIT_THRESHOLD failures in a row (two tenants'), the last by `last`'s slot, while `line` waits. */
async function openWithLine(s: SchedulerStub, line: string[], maxConcurrency: number): Promise<void> {
  for (let i = 1; i < CIRCUIT_THRESHOLD; i++) {
    await ask(s, `f${i}`, "globex", true, maxConcurrency);
    await s.release(`f${i}`, "failure");
  }
  for (let i = 0; i < maxConcurrency; i++) await ask(s, `last${i}`, "acme", true, maxConcurrency);
  for (const j of line) expect(await ask(s, j, j.startsWith("g") ? "globex" : "acme", true, maxConcurrency)).toMatchObject({ status: "queued" });
}

/** Opens the circuit with failures of two tenants', then ends the cool-down: half-open. */
async function halfOpen(s: SchedulerStub): Promise<void> {
  for (let i = 0; i < CIRCUIT_THRESHOLD; i++) {
    await ask(s, `o${i}`, i % 2 ? "globex" : "acme");
    await s.release(`o${i}`, "failure");
  }
  await runInDurableObject(s, (_o: BackendScheduler, state) => {
    state.storage.sql.exec("UPDATE health SET open_until = ?", Date.now() - 1);
  });
  expect(await s.status()).toMatchObject({ circuit: "half_open" });
}

/** A long generation ("long") holds the backend's one slot while other attempts, of two tenants, fail and open the circuit. */
async function openWhileLongRuns(s: SchedulerStub): Promise<void> {
  expect(await ask(s, "long", "acme", true, 1)).toMatchObject({ status: "granted" });
  for (let i = 0; i < CIRCUIT_THRESHOLD; i++) {
    await runInDurableObject(s, (_o: BackendScheduler, st) => {
      st.storage.sql.exec("INSERT INTO slots (job_id, tenant, lease_until, probe) VALUES (?, ?, ?, 0)", `f${i}`, i % 2 ? "globex" : "acme", Date.now() + 60_000);
    });
    await s.release(`f${i}`, "failure");
  }
}

describe("backend circuit", () => {
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
    await openWhileLongRuns(s);
    await runInDurableObject(s, (_o: BackendScheduler, st) => {
      st.storage.sql.exec("UPDATE health SET open_until = ?", Date.now() - 1);
    });
    expect(await ask(s, "probe", "acme", false, 1)).toMatchObject({ status: "open" });
    expect(await s.status()).toMatchObject({ active: 1 });
    // The slot frees (and its success closes the circuit): the next goes.
    await s.release("long", "success");
    expect(await ask(s, "probe", "acme", false, 1)).toMatchObject({ status: "granted" });
  });

  it("waits for a free slot after its cool-down without an alarm in the past (one would fire again and again, or be lost), and hands the probe out when the slot frees", async () => {
    const s = named("probe-later");
    await openWhileLongRuns(s);
    expect(await ask(s, "waiter", "globex", true, 1)).toMatchObject({ status: "queued" });
    const woken = await runInDurableObject(s, async (o: BackendScheduler, st) => {
      const woken = recordWakes(o, true);
      // The cool-down is over while the long generation still holds the one slot.
      st.storage.sql.exec("UPDATE health SET open_until = ?", Date.now() - 1);
      await o.alarm();
      const alarm = await st.storage.getAlarm();
      expect(alarm).not.toBeNull();
      expect(alarm ?? 0).toBeGreaterThan(Date.now());
      await o.release("long", "success");
      return woken;
    });
    expect(woken).toEqual(["waiter"]);
  });

  it("sets an alarm at once for a probe owed now (its cool-down's alarm lost with a hard restart), at a look at its status or a newcomer's arrival", async () => {
    const s = named("probe-owed");
    const join = (o: BackendScheduler, jobId: string, tenant: string) => o.acquire({ backend: "probe-owed", jobId, tenant, maxConcurrency: 1, cooldownMs: 30_000, leaseMs: 60_000, enqueue: true });
    const sets = await runInDurableObject(s, async (o: BackendScheduler, st) => {
      recordWakes(o, true);
      for (let i = 0; i < CIRCUIT_THRESHOLD; i++) {
        expect(await join(o, `f${i}`, i % 2 ? "globex" : "acme")).toMatchObject({ status: "granted" });
        await o.release(`f${i}`, "failure");
      }
      for (const w of ["w1", "w2"]) expect(await join(o, w, "acme")).toMatchObject({ status: "queued" });
      st.storage.sql.exec("DELETE FROM scatter");
      // The cool-down ended a while ago; its alarm, kept in storage, never fired (a hard restart lost its schedule).
      const openUntil = Date.now() - 20_000;
      st.storage.sql.exec("UPDATE health SET open_until = ?", openUntil);
      const storage = st.storage as unknown as { getAlarm: () => Promise<number | null>; setAlarm: (t: number) => Promise<void> };
      const sets: number[] = [];
      storage.getAlarm = () => Promise.resolve(openUntil + 1);
      storage.setAlarm = (t) => {
        sets.push(t);
        return Promise.resolve();
      };
      expect(await o.status()).toMatchObject({ circuit: "half_open", active: 0, waiting: 2 });
      expect(await join(o, "w3", "acme")).toMatchObject({ status: "queued" });
      return sets;
    });
    // Set to fire now, so the alarm offers the probe to the head of the line.
    expect(sets.length).toBeGreaterThan(0);
    expect(Math.max(...sets)).toBeLessThanOrEqual(Date.now() + 1);
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

  it("stays half-open when one tenant's probe fails (it may be of its own making), and the next probe, another's, closes it", async () => {
    const s = named("probe-one-tenant");
    await halfOpen(s);
    // A tenant's job the backend refuses (a model it lacks, through a pin) takes the probe: that alone closes it to nobody.
    for (let i = 0; i < 3; i++) {
      expect(await ask(s, `bad${i}`, "capped")).toMatchObject({ status: "granted", probe: true });
      await s.release(`bad${i}`, "failure");
      expect(await s.status()).toMatchObject({ circuit: "half_open" });
    }
    expect(await ask(s, "good", "acme")).toMatchObject({ status: "granted", probe: true });
    await s.release("good", "success");
    expect(await s.status()).toMatchObject({ circuit: "closed", open_until: null });
  });

  it("opens again when the probes of two tenants fail in a row, or a probe finds the backend unreachable", async () => {
    const broken = named("probe-two-tenants");
    await halfOpen(broken);
    await ask(broken, "p1", "capped");
    await broken.release("p1", "failure");
    expect(await broken.status()).toMatchObject({ circuit: "half_open" });
    await ask(broken, "p2", "acme");
    await broken.release("p2", "failure");
    expect(await broken.status()).toMatchObject({ circuit: "open" });
    // The next half-open spell starts afresh: one tenant's failed probe keeps it half-open again.
    await runInDurableObject(broken, (_o: BackendScheduler, state) => {
      state.storage.sql.exec("UPDATE health SET open_until = ?", Date.now() - 1);
    });
    await ask(broken, "p3", "globex");
    await broken.release("p3", "failure");
    expect(await broken.status()).toMatchObject({ circuit: "half_open" });

    const down = named("probe-unreachable");
    await halfOpen(down);
    await ask(down, "p", "capped");
    await down.release("p", "failure", true);
    expect(await down.status()).toMatchObject({ circuit: "open" });
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
});

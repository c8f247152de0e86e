import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import { ask, named } from "../support/scheduler";

describe("backend recent figures", () => {
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

  it("dates a slot its alarm hands out at the real time, so no run is reported shorter than it was", async () => {
    const s = named("recent-alarm-grant");
    // One slot, held by a generation whose job is gone (an orphan past its time); "next" waits.
    await ask(s, "gone", "acme", true, 1);
    expect(await ask(s, "next", "acme", true, 1)).toMatchObject({ status: "queued" });
    await runInDurableObject(s, async (o: BackendScheduler, state) => {
      state.storage.sql.exec("UPDATE slots SET job_id = 'gone#1', lease_until = ? WHERE job_id = 'gone'", Date.now() - 1);
      state.storage.sql.exec("DELETE FROM recent WHERE job_id = 'gone'");
      // The clock stands still, so the run below lasts 0 ms whatever the machine's load.
      vi.useFakeTimers({ toFake: ["Date"] });
      try {
        const now = Date.now();
        await o.alarm();
        expect(state.storage.sql.exec<{ granted_at: number }>("SELECT granted_at FROM recent WHERE job_id = 'next'").one().granted_at).toBe(now);
        await o.acquire({ backend: "recent-alarm-grant", jobId: "next", tenant: "acme", maxConcurrency: 1, cooldownMs: 30_000, leaseMs: 60_000, enqueue: true });
        await o.release("next", "success");
      } finally {
        vi.useRealTimers();
      }
    });
    expect((await s.status()).recent).toMatchObject({ jobs: 1, run_ms_p50: 0 });
  });
});

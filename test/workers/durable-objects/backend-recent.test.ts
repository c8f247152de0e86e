import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
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
});

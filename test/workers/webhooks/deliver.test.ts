import { describe, expect, it } from "vitest";
import { nextDelayMs } from "../../../src/webhooks/deliver";

const schedule = [5, 300, 1800];

describe("retry schedule", () => {
  it("waits each delay of the schedule in turn, then gives up: 1 + its length attempts in all", () => {
    expect(nextDelayMs(schedule, 1, null, 0)).toBe(5_000);
    expect(nextDelayMs(schedule, 2, null, 0)).toBe(300_000);
    expect(nextDelayMs(schedule, 3, null, 0)).toBe(1_800_000);
    expect(nextDelayMs(schedule, 4, null, 0)).toBeNull();
  });

  it("adds at most 10% jitter so failures that happened together spread out", () => {
    expect(nextDelayMs(schedule, 2, null, 0.999)).toBeGreaterThan(300_000);
    expect(nextDelayMs(schedule, 2, null, 0.999)).toBeLessThanOrEqual(330_000);
  });

  it("honours a longer Retry-After, never a shorter one", () => {
    expect(nextDelayMs(schedule, 1, 60_000, 0)).toBe(60_000);
    expect(nextDelayMs(schedule, 2, 1_000, 0)).toBe(300_000);
    expect(nextDelayMs(schedule, 4, 60_000, 0)).toBeNull();
  });

  it("honours a Retry-After of at most a day: a receiver's year (or 10^20 s) cannot hold the event, its job, or an alarm past what a date holds", () => {
    const day = 24 * 3600_000;
    expect(nextDelayMs(schedule, 1, 365 * day, 0)).toBe(day);
    const absurd = nextDelayMs(schedule, 1, 1e20 * 1000, 0) ?? 0;
    expect(absurd).toBe(day);
    expect(() => new Date(Date.now() + absurd).toISOString()).not.toThrow();
  });
});

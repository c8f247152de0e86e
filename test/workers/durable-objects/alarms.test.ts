import { describe, expect, it } from "vitest";
import { LOST_ALARM_MS, alarmBy } from "../../../durable-objects/alarms";

/** An object's alarm as storage keeps it: the time set, and every time it was set. */
function alarmStore(initial: number | null) {
  let alarm = initial;
  const sets: number[] = [];
  return {
    sets,
    getAlarm: () => Promise.resolve(alarm),
    setAlarm: (at: number | Date) => {
      alarm = typeof at === "number" ? at : at.getTime();
      sets.push(alarm);
      return Promise.resolve();
    },
  };
}

describe("an object's one alarm", () => {
  it("is moved earlier for a sooner time, and left alone for a later one", async () => {
    const now = Date.now();
    const store = alarmStore(now + 60_000);
    await alarmBy(store, now + 90_000);
    expect(store.sets).toEqual([]);
    await alarmBy(store, now + 10_000);
    expect(store.sets).toEqual([now + 10_000]);
    const none = alarmStore(null);
    await alarmBy(none, now + 30_000);
    expect(none.sets).toEqual([now + 30_000]);
  });

  it("is set again to fire now when the time it holds is long past (lost with a hard restart), however late the new time", async () => {
    const lost = Date.now() - LOST_ALARM_MS - 1_000;
    const store = alarmStore(lost);
    const before = Date.now();
    await alarmBy(store, before + 60_000);
    expect(store.sets).toHaveLength(1);
    expect(store.sets[0]).toBeGreaterThanOrEqual(before);
    expect(store.sets[0]).toBeLessThanOrEqual(Date.now());
  });

  it("is left alone when just past: an alarm about to fire is not put off", async () => {
    const store = alarmStore(Date.now() - 100);
    await alarmBy(store, Date.now() + 60_000);
    expect(store.sets).toEqual([]);
  });
});

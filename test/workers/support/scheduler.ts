import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import { schedulerObjects } from "./objects";

/** Each test gets its own backend (storage is shared within a file). */
export const scheduler = (name: string) => schedulerObjects.get(schedulerObjects.idFromName(name));
export type SchedulerStub = ReturnType<typeof scheduler>;
const names = new WeakMap<object, string>();
export const named = (name: string) => {
  const s = scheduler(name);
  names.set(s, name);
  return s;
};
export const ask = (s: SchedulerStub, jobId: string, tenant = "acme", enqueue = true, maxConcurrency = 2) =>
  s.acquire({ backend: names.get(s) ?? "unnamed", jobId, tenant, maxConcurrency, cooldownMs: 30_000, leaseMs: 60_000, enqueue });

/** The scheduler's wake-ups to jobs (its private `ask`), recorded instead of sent: each answers `answer`. */
export function recordWakes(o: BackendScheduler, answer: boolean | undefined): string[] {
  const woken: string[] = [];
  (o as unknown as { ask: (jobId: string) => Promise<boolean | undefined> }).ask = (jobId) => {
    woken.push(jobId);
    return Promise.resolve(answer);
  };
  return woken;
}

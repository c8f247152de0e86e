import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import type { JobObject } from "../../../durable-objects/job/object";
import { jobStub } from "../../../src/jobs/client";
import { hangingJobInput, runIds, running } from "../support/jobs";
import { jobObjects, schedulerObjects } from "../support/objects";

const newRunId = runIds();

describe("a job's calls to its backend's scheduler", () => {
  it("are waited for a bounded time: a scheduler that never answers does not hold the job's step for good", { timeout: 30_000 }, async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    await running(id);
    const scheduler = schedulerObjects.get(schedulerObjects.idFromName("hang"));
    // The backend's scheduler stops answering renewals (an overloaded or reset object): RPC calls
    // the class's own method, so it is the class's that is swapped, and put back after.
    let original: unknown;
    await runInDurableObject(scheduler, (o: BackendScheduler) => {
      original = Reflect.get(Object.getPrototypeOf(o) as object, "renew");
      Reflect.set(Object.getPrototypeOf(o) as object, "renew", () => new Promise(() => undefined));
    });
    try {
      const job = jobObjects.get(jobObjects.idFromName(id));
      // Its call under way, the slot due for a renewal: the next step renews it.
      await runInDurableObject(job, (o: JobObject) => void Reflect.set(Reflect.get(Reflect.get(o, "room"), "memory"), "renewedAt", 0));
      expect(await runDurableObjectAlarm(job)).toBe(true);
      // The job is as it was, and its object answers.
      expect(await jobStub(env, id).get("acme")).toMatchObject({ ok: true, snapshot: { job: { status: "running" } } });
    } finally {
      await runInDurableObject(scheduler, (o: BackendScheduler) => void Reflect.set(Object.getPrototypeOf(o) as object, "renew", original));
    }
  });
});

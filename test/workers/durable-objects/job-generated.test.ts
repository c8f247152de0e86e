import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { jobStub } from "../../../src/jobs/client";
import type { Job } from "../../../src/jobs/results";
import { hangingCalls, runIds, runningS3Job } from "../support/jobs";
import { generatedBeforeRestart, schedulerObjects } from "../support/objects";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import type { JobObject } from "../../../durable-objects/job/object";

const newRunId = runIds();

/** An SD-on-EKS job writing its outputs to S3 (the stand-in's `flaky` bucket), its call under way; its R2 place. */
const s3Job = (id: string) => runningS3Job(id, "flaky");

describe("a generation whose images were being written to S3 when a restart came", () => {
  it("has its writes resumed by the new instance, the generation not run again", { timeout: 20_000 }, async () => {
    const id = newRunId();
    const prefix = await s3Job(id);
    const generations = await hangingCalls("/sdapi/v1/img2img");
    await runDurableObjectAlarm(await generatedBeforeRestart(id, prefix));
    let job: Job | undefined;
    for (let i = 0; i < 100; i++) {
      const res = await jobStub(env, id).get("acme");
      job = res.ok ? res.snapshot.job : undefined;
      if (job?.status !== "running") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(job).toMatchObject({ status: "succeeded" });
    expect(job?.output).toHaveLength(1);
    expect(await hangingCalls("/sdapi/v1/img2img")).toBe(generations);
    expect(await hangingCalls(`/flaky/output/${id}/${id}-ab12-1.png`)).toBeGreaterThan(0);
    expect(await hangingCalls(`/flaky/output/${id}/${id}-ab12.out`)).toBeGreaterThan(0);
    const events = await jobStub(env, id).events("acme");
    expect(events.ok && events.events.filter((e) => e.type === "attempt.started")).toHaveLength(1);
  });

  it("leaves a slot the backend's answer gave back given back, and gives the resumed run's verdict to it", { timeout: 20_000 }, async () => {
    const id = newRunId();
    const prefix = await s3Job(id);
    // A1111 answered 200: its slot went back then ("later"), the verdict to follow the body.
    const scheduler = schedulerObjects.get(schedulerObjects.idFromName("hang"));
    await scheduler.release(id, "later");
    const before = (await scheduler.status()).recent.jobs;
    await runDurableObjectAlarm(await generatedBeforeRestart(id, prefix, true));
    for (let i = 0; i < 100; i++) {
      const res = await jobStub(env, id).get("acme");
      if (res.ok && res.snapshot.job.status !== "running") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const slots = await runInDurableObject(scheduler, (_o: BackendScheduler, st) => st.storage.sql.exec("SELECT job_id FROM slots WHERE job_id = ?", id).toArray());
    expect(slots).toEqual([]);
    // The success counts in the backend's recent figures: its verdict went to the slot given back.
    expect((await scheduler.status()).recent.jobs).toBe(before + 1);
  });

  it("whose outcome cannot be recorded fails the job, never runs it again; failing that too, the next step fails it and the slot goes back", { timeout: 30_000 }, async () => {
    const id = newRunId();
    const prefix = await s3Job(id);
    const generations = await hangingCalls("/sdapi/v1/img2img");
    const stub = await generatedBeforeRestart(id, prefix);
    type Faulty = { settle: () => Promise<void>; failUnsettled: () => Promise<void> };
    const settlerOf = (o: JobObject) => Reflect.get(o, "settler") as Faulty;
    // A storage fault for a moment: the outcome, then the job's failure, are refused once.
    await runInDurableObject(stub, (o: JobObject) => {
      const settler = settlerOf(o);
      for (const name of ["settle", "failUnsettled"] as const) {
        const real = settler[name].bind(settler);
        settler[name] = async () => {
          settler[name] = real;
          throw new Error("storage refused the write");
        };
      }
    });
    await runDurableObjectAlarm(stub);
    const until = Date.now() + 10_000;
    let job: Job | undefined;
    while (Date.now() < until) {
      await runDurableObjectAlarm(stub);
      const res = await jobStub(env, id).get("acme");
      job = res.ok ? res.snapshot.job : undefined;
      if (job?.status !== "running") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(job).toMatchObject({ status: "failed", error: { code: "internal_error" } });
    expect(await hangingCalls("/sdapi/v1/img2img")).toBe(generations);
    const scheduler = schedulerObjects.get(schedulerObjects.idFromName("hang"));
    const held = () => runInDurableObject(scheduler, (_o: BackendScheduler, st) => st.storage.sql.exec("SELECT job_id FROM slots WHERE job_id = ?", id).toArray().length);
    const freed = Date.now() + 5_000;
    while ((await held()) > 0 && Date.now() < freed) await new Promise((r) => setTimeout(r, 50));
    expect(await held()).toBe(0);
  });
});

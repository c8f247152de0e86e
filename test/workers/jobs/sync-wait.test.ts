import { env } from "cloudflare:workers";
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { Hono } from "hono";
import { jobStub } from "../../../src/jobs/client";
import { SYNC_WAIT_MS, failureStatus, hasEnded, syncWait, untilItsDeadline, waitForEnd } from "../../../src/jobs/sync-wait";
import type { AppEnv } from "../../../src/middleware/auth";
import { hangingJobs } from "../support/jobs";
import { jobObjects } from "../support/objects";
import { snapshot } from "../dialects/support";

/** A job on the backend that never answers: it stays running until canceled. */
const hangingJob = hangingJobs();

describe("waiting for a dialect's job", () => {
  it("answers the job as it is once the bound has passed", async () => {
    const id = await hangingJob();
    const started = Date.now();
    const latest = await waitForEnd(env, id, "acme", { maxMs: 300 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(hasEnded(latest.job)).toBe(false);
    expect(failureStatus(latest.job)).toBe(504);
  });

  it("cancels the job when the client's signal aborts, keeping the cancel alive with waitUntil", async () => {
    const id = await hangingJob();
    const hangUp = new AbortController();
    const kept: Promise<unknown>[] = [];
    const waiting = waitForEnd(env, id, "acme", { signal: hangUp.signal, waitUntil: (p) => kept.push(p) });
    setTimeout(() => hangUp.abort(), 100);
    const ended = await waiting;
    expect(ended.job.status).toBe("canceled");
    expect(kept).toHaveLength(1);
  });

  it("outlasts a reset of the job's object mid-wait (a deploy does that): it asks again and answers the job as it ends", { timeout: 20_000 }, async () => {
    const id = await hangingJob();
    const waiting = waitForEnd(env, id, "acme", { maxMs: 15_000 });
    await new Promise((r) => setTimeout(r, 200));
    // The object restarts, as on a code update: the long-poll it was answering is cut.
    await runInDurableObject(jobObjects.get(jobObjects.idFromName(id)), (_o, state) => {
      try {
        state.abort("code update");
      } catch {
        // abort() throws in the caller's turn by design.
      }
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    expect(await jobStub(env, id).cancel("acme")).toMatchObject({ ok: true });
    expect((await waiting).job.status).toBe("canceled");
  });

  it("waits for an A1111 call's job until its own deadline, past the 10 minutes other synchronous calls wait (webuiapi sets no timeout)", () => {
    const long = snapshot({ status: "running" });
    long.input.timeout_s = 3600;
    // A 45-minute generation within its hour is waited for, not answered 504 while it goes on.
    expect(untilItsDeadline(long)).toBeGreaterThan(45 * 60_000);
    expect(untilItsDeadline(long)).toBeGreaterThan(SYNC_WAIT_MS);
    // Never long past the deadline, by which the job has ended.
    expect(untilItsDeadline(long)).toBeLessThanOrEqual(3600_000 + 60_000);
  });

  it("gives an ended job that did not succeed the status a synchronous answer carries", () => {
    expect(failureStatus(snapshot({ status: "canceled" }).job)).toBe(409);
    expect(failureStatus(snapshot({ status: "failed", error: { code: "timeout", message: "" } }).job)).toBe(504);
    expect(failureStatus(snapshot({ status: "failed", error: { code: "invalid_request", message: "" } }).job)).toBe(422);
    expect(failureStatus(snapshot({ status: "failed", error: { code: "backend_failed", message: "" } }).job)).toBe(502);
  });
});

describe("a synchronous call's wait", () => {
  /** A route as a synchronous dialect has it: the tenant's job, answered once it ended. */
  const route = new Hono<AppEnv>().get("/wait/:id", async (c) => {
    c.set("tenant", "acme");
    return c.json((await syncWait(c, c.req.param("id"))).job.status);
  });

  it("cancels the job when the caller hangs up, the cancel kept alive past the request", async () => {
    const id = await hangingJob();
    const hangUp = new AbortController();
    const ctx = createExecutionContext();
    const answer = route.fetch(new Request(`http://gateway.test/wait/${id}`, { signal: hangUp.signal }), env, ctx);
    setTimeout(() => hangUp.abort(), 100);
    expect(await (await answer).json()).toBe("canceled");
    await waitOnExecutionContext(ctx);
    const now = await jobStub(env, id).get("acme");
    expect(now.ok && now.snapshot.job.status).toBe("canceled");
  });
});

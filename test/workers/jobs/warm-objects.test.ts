import { env } from "cloudflare:workers";
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { Env } from "../../../src/env";
import { jobStub } from "../../../src/jobs/client";
import { checkRunId } from "../../../src/jobs/run-id";
import { takeRunId, warmJobObjects } from "../../../src/jobs/warm-objects";
import { hangingJobInput } from "../support/jobs";

const tablesOf = (id: string) =>
  runInDurableObject(env.JOBS.get(env.JOBS.idFromName(id)), (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master").one().n);

/** One request through the middleware, its waitUntil work (the warming) awaited. */
async function request(app: Hono<{ Bindings: Env }>): Promise<void> {
  const ctx = createExecutionContext();
  await app.fetch(new Request("http://gateway.test/"), env, ctx);
  await waitOnExecutionContext(ctx);
}

describe("warm job objects", () => {
  const app = new Hono<{ Bindings: Env }>().use(warmJobObjects({ size: 2, delayMs: 0 })).get("/", (c) => c.text("ok"));

  it("hands out each warmed run id once, then fresh ones, all well formed", async () => {
    await request(app);
    const ids = [await takeRunId(env), await takeRunId(env), await takeRunId(env)];
    expect(await Promise.all(ids.map((id) => checkRunId(env, id)))).toEqual([true, true, true]);
    expect(new Set(ids).size).toBe(3);
    // Topped up again by the next request, never past its size.
    await request(app);
    await request(app);
    const next = [await takeRunId(env), await takeRunId(env)];
    expect(next.some((id) => ids.includes(id))).toBe(false);
  });

  it("leaves a warmed object without storage until its job comes, then runs the job on it", async () => {
    await request(app);
    const id = await takeRunId(env);
    expect(await tablesOf(id)).toBe(0);
    const created = await jobStub(env, id).create(hangingJobInput(id));
    expect(created).toMatchObject({ created: true, snapshot: { job: { id, status: "queued" } } });
    expect(await tablesOf(id)).toBeGreaterThan(0);
    expect((await jobStub(env, id).get("acme")).ok).toBe(true);
    await jobStub(env, id).cancel("acme");
  });
});

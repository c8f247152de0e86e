/** A running job's live progress: read from its backend, its events, and its webhooks for those that ask. */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import type { JobLedger } from "../../../durable-objects/job/ledger";
import type { JobObject } from "../../../durable-objects/job/object";
import { jobStub } from "../../../src/jobs/client";
import type { Delivery } from "../../../src/schemas/job";
import { hangingCalls, hangingJobInput, runIds, running } from "../support/jobs";
import { jobObjects } from "../support/objects";

const newRunId = runIds();
const objectFor = (id: string) => jobObjects.get(jobObjects.idFromName(id));

/** The job's delivery log once a try of `type` is in it (bounded: what it has after `waitMs`). */
async function firstDeliveriesOf(id: string, type: string, waitMs = 5_000): Promise<Delivery[]> {
  const until = Date.now() + waitMs;
  for (;;) {
    const res = await jobStub(env, id).deliveries("acme");
    const log = res.ok ? res.deliveries : [];
    if (log.some((d) => d.type === type) || Date.now() > until) return log;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("live progress", () => {
  it("reads a running job's progress from its backend into the job and rate-limited job.progress events, null once it ends", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    await running(id);
    const progressEvents = async () => {
      const res = await jobStub(env, id).events("acme");
      return (res.ok ? res.events : []).filter((e) => e.type === "job.progress");
    };
    const until = Date.now() + 5_000;
    while ((await progressEvents()).length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    const events = await progressEvents();
    expect(events.length).toBeGreaterThanOrEqual(3);
    expect(events[0]?.data).toMatchObject({ fraction: expect.any(Number), step: expect.any(Number), steps: 20, eta_s: 3 });
    const fractions = events.map((e) => e.data.fraction as number);
    expect(fractions.at(-1)).toBeGreaterThan(fractions[0] ?? 1);
    // At most 2 in any second: consecutive events at least ~half a second apart.
    const times = events.map((e) => Date.parse(e.at));
    for (let i = 2; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 2] ?? 0)).toBeGreaterThanOrEqual(1000);

    const now = await jobStub(env, id).get("acme");
    expect(now.ok && now.snapshot.job.progress).toMatchObject({ fraction: expect.any(Number), steps: 20 });
    const live = await jobStub(env, id).liveProgress("acme", { image: true });
    expect(live).toMatchObject({ ok: true, status: "running", image: "cHJldmlldw==", progress: { job: "scripts_img2img", job_count: 1, steps: 20 } });
    expect(await jobStub(env, id).liveProgress("globex", { image: true })).toMatchObject({ ok: false, code: "not_found" });
    expect(await jobStub(env, id).skip("acme")).toMatchObject({ ok: true, skipped: true });

    const canceled = await jobStub(env, id).cancel("acme");
    expect(canceled.ok && canceled.snapshot.job.progress).toBeNull();
    expect(await jobStub(env, id).liveProgress("acme", { image: false })).toMatchObject({ ok: true, status: "canceled", progress: null });
  });

  it("sends job.progress to a webhook that asked for it, each tried once, and the end after it", async () => {
    const id = newRunId();
    const hook = `/_echo/progress-${id}`;
    await jobStub(env, id).create(hangingJobInput(id, { webhook: `${inject("hangingBackendUrl")}${hook}`, webhook_events: ["job.progress", "job.canceled"] }));
    await running(id);
    const progressTries = async () => (await jobStub(env, id).deliveries("acme").then((r) => (r.ok ? r.deliveries : []))).filter((d) => d.type === "job.progress");
    const until = Date.now() + 5_000;
    while ((await progressTries()).length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    const tries = await progressTries();
    expect(tries.length).toBeGreaterThanOrEqual(2);
    // One event each, each taken at its first try; their bodies are the job as it ran.
    expect(new Set(tries.map((t) => t.event_id)).size).toBe(tries.length);
    expect(tries.every((t) => t.attempt === 1 && t.status_code === 200 && t.next_attempt_at === null)).toBe(true);
    expect(await hangingCalls(hook)).toBeGreaterThanOrEqual(2);
    await jobStub(env, id).cancel("acme");
    const log = await firstDeliveriesOf(id, "job.canceled");
    expect(log.at(-1)).toMatchObject({ type: "job.canceled", status_code: 200 });
  });

  it("tries a job.progress webhook once: a receiver that fails it gets the next one, not a retry", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { webhook: "http://127.0.0.1:9/down", webhook_events: ["job.progress", "job.canceled"] }));
    await running(id);
    const until = Date.now() + 5_000;
    let tries: Delivery[] = [];
    while (tries.length < 2 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      tries = (await jobStub(env, id).deliveries("acme").then((r) => (r.ok ? r.deliveries : []))).filter((d) => d.type === "job.progress");
    }
    expect(tries.length).toBeGreaterThanOrEqual(2);
    expect(tries.every((t) => t.attempt === 1 && t.next_attempt_at === null)).toBe(true);
    const events = await jobStub(env, id).events("acme");
    expect((events.ok ? events.events : []).filter((e) => e.type === "webhook.failed")).toEqual([]);
    // The end is retried on the schedule as ever.
    await jobStub(env, id).cancel("acme");
    const ended = (await firstDeliveriesOf(id, "job.canceled")).find((d) => d.type === "job.canceled");
    expect(ended).toMatchObject({ attempt: 1, status_code: null });
    expect(ended?.next_attempt_at).not.toBeNull();
  });

  it("gives a job.progress try 3 s: a receiver that hangs holds the end back that long at most", { timeout: 20_000 }, async () => {
    const id = newRunId();
    // Nothing answers there: each try hangs until its timeout.
    await jobStub(env, id).create(hangingJobInput(id, { webhook: `${inject("hangingBackendUrl")}/hanging-hook-${id}`, webhook_events: ["job.progress", "job.canceled"] }));
    await running(id);
    const progress = (await firstDeliveriesOf(id, "job.progress", 10_000)).find((d) => d.type === "job.progress");
    expect(progress).toMatchObject({ attempt: 1, error: "timeout after 3 s", next_attempt_at: null });
    expect(progress?.duration_ms).toBeLessThan(4_000);
  });

  it("sends no job.progress body too large for its row (an input echoed whole): nothing of it goes to R2", async () => {
    const id = newRunId();
    const image = `data:image/png;base64,${"A".repeat(300_000)}`;
    await jobStub(env, id).create(
      hangingJobInput(id, { dialect: "replicate", dialect_data: { model: "acme/m", version: "v", input: { image } }, webhook: `${inject("hangingBackendUrl")}/_echo/big-progress-${id}`, webhook_events: ["job.progress", "job.canceled"] }),
    );
    await running(id);
    const events = async () => ((r) => (r.ok ? r.events : []))(await jobStub(env, id).events("acme")).filter((e) => e.type === "job.progress");
    const until = Date.now() + 5_000;
    while ((await events()).length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect((await events()).length).toBeGreaterThanOrEqual(2);
    expect((await jobStub(env, id).deliveries("acme").then((r) => (r.ok ? r.deliveries : []))).filter((d) => d.type === "job.progress")).toEqual([]);
    expect((await env.IMAGES.list({ prefix: `webhooks/${id}/` })).objects).toEqual([]);
  });

  it("keeps at most the progress webhook under way and the latest behind it; any event behind progress makes it old news", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id, { webhook: "https://receiver.example/hook", webhook_events: ["job.progress", "job.canceled"] }));
    const rows = await runInDurableObject(objectFor(id), (o: JobObject, state) => {
      const ledger = Reflect.get(o, "ledger") as JobLedger;
      const webhook = (n: number) => ({ url: "https://receiver.example/hook", body: { text: JSON.stringify({ n }), slots: [] } });
      for (let n = 1; n <= 4; n++) ledger.queueProgressWebhook(webhook(n), Date.now());
      const pending = () => state.storage.sql.exec<{ body: string }>("SELECT body FROM outbox WHERE state = 'pending' ORDER BY seq").toArray().map((r) => r.body);
      const queued = pending();
      const head = ledger.outboxHead();
      const first = head !== undefined && ledger.dropIfSuperseded(head);
      const next = ledger.outboxHead();
      const last = next !== undefined && ledger.dropIfSuperseded(next);
      return { queued, first, next: next?.body, last, left: pending() };
    });
    expect(rows).toEqual({ queued: ['{"n":1}', '{"n":4}'], first: true, next: '{"n":4}', last: false, left: ['{"n":4}'] });
  });

  it("sends one skip per attempt, however many come at once: a second could land on the next job there", async () => {
    const id = newRunId();
    await jobStub(env, id).create(hangingJobInput(id));
    await running(id);
    const before = await hangingCalls("/sdapi/v1/skip");
    const answers = await Promise.all(Array.from({ length: 5 }, () => jobStub(env, id).skip("acme")));
    expect(answers.every((a) => a.ok && a.skipped)).toBe(true);
    expect((await hangingCalls("/sdapi/v1/skip")) - before).toBe(1);
    await jobStub(env, id).cancel("acme");
  });

  it("has no progress while queued", async () => {
    const id = newRunId();
    const { snapshot } = await jobStub(env, id).create(hangingJobInput(id));
    expect(snapshot.job.progress).toBeNull();
    expect(await jobStub(env, id).skip("acme")).toMatchObject({ ok: true });
  });
});

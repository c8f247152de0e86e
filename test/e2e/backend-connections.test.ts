/**
 * Connections to a backend that the backend has given up: a request sent on a kept-alive connection
 * the server has just closed (its keep-alive timeout ran out) fails before the server read it, and
 * must cost the job nothing, not a failed attempt, not a failed job, not an open circuit. A
 * generation is sent again only once A1111 has said it never got it (test/e2e/lost-calls.test.ts:
 * one it did get is not).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, waitForJob, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
let client: ReturnType<typeof api>;

beforeAll(async () => {
  // A connection idle for 300 ms is stale: the next request on it is dropped unread.
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20, staleAfterMs: 300 }) } });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-connections-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ acme: { api_keys: ["sk_acme"] } }),
      BACKENDS: JSON.stringify([{ name: "only", kind: "a1111", url: sim.url }]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
  client = api(gw.url, "sk_acme");
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("stale backend connections", () => {
  it("sends a generation again on another connection when the server had closed the idle one, after A1111 said it never got it", async () => {
    const done: JobView[] = [];
    for (let i = 0; i < 4; i++) {
      // Every connection the gateway keeps to the backend goes stale meanwhile.
      await new Promise((r) => setTimeout(r, 700));
      const res = await client.post("/v1/jobs", { type: "txt2img", prompt: `after a pause ${i}`, width: 64, height: 64 });
      expect(res.status).toBe(202);
      done.push(await waitForJob(client, ((await res.json()) as JobView).id, 30_000));
    }
    expect(done.map((j) => j.status)).toEqual(Array(4).fill("succeeded"));
    // The race was there to lose: requests did land on stale connections.
    const stats = await sim.stats();
    expect(stats.staleDropped).toBeGreaterThan(0);
    // Not resent blindly: A1111 was asked about the task first, and no task ran twice.
    expect(stats.requests["/internal/progress"]).toBeGreaterThan(0);
    expect(Object.values(stats.byTask)).toEqual(Array(4).fill(1));
    for (const job of done) {
      const events = ((await (await client.get(`/v1/jobs/${job.id}/events`)).json()) as { data: { type: string }[] }).data;
      expect(events.filter((e) => e.type === "attempt.started")).toHaveLength(1);
      expect(events.some((e) => e.type === "attempt.failed")).toBe(false);
    }
    const backends = ((await (await client.get("/v1/backends")).json()) as { data: { name: string; circuit: string }[] }).data;
    expect(backends.find((b) => b.name === "only")?.circuit).toBe("closed");
  });
});

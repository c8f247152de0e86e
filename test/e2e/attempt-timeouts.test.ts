/**
 * A backend's `timeout_s` bounds an attempt there whatever the backend does meanwhile: a RunPod job
 * still running past it (or an endpoint that stops answering its status) is canceled there and the
 * job moves on to the next fitting backend. A real gateway and two simulator processes over HTTP.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, waitForJob } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";

let slow: Awaited<ReturnType<typeof startSimulatorProcess>>;
let next: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
let client: ReturnType<typeof api>;

beforeAll(async () => {
  slow = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20, runpod: { msPerImage: 60_000 } }) } });
  next = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-attempt-timeouts-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ acme: { api_keys: ["sk_acme"] } }),
      BACKENDS: JSON.stringify([
        { name: "runpod-slow", kind: "runpod", url: `${slow.url}/v2/slow-endpoint`, timeout_s: 3 },
        { name: "runpod-next", kind: "runpod", url: `${next.url}/v2/next-endpoint` },
      ]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
  client = api(gw.url, "sk_acme");
});

afterAll(async () => {
  await gw?.stop();
  await slow?.stop();
  await next?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const events = async (id: string) => ((await (await client.get(`/v1/jobs/${id}/events`)).json()) as { data: { type: string; data: Record<string, unknown> }[] }).data;

describe("an attempt past its backend's timeout_s", () => {
  it("is canceled there, and the job moves on to the next backend", async () => {
    const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "slow pod", width: 64, height: 64 });
    const job = (await res.json()) as { id: string };
    const done = await waitForJob(client, job.id, 40_000);
    expect(done).toMatchObject({ status: "succeeded", backend: "runpod-next" });
    expect((await events(job.id)).find((e) => e.type === "attempt.failed")?.data).toMatchObject({ backend: "runpod-slow", code: "timeout" });
    expect((await slow.stats()).cancels).toBe(1);
  });

  it("also when the endpoint stops answering its status: the job does not wait for its own timeout", async () => {
    await slow.config({ runpod: { msPerImage: 60_000 } });
    const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "unreachable pod", width: 64, height: 64, timeout_s: 120 });
    const job = (await res.json()) as { id: string };
    // Once the job is there, the endpoint goes away.
    await expect.poll(async () => (await events(job.id)).some((e) => e.type === "attempt.submitted"), { timeout: 10_000 }).toBe(true);
    await slow.stop();
    const done = await waitForJob(client, job.id, 60_000);
    expect(done).toMatchObject({ status: "succeeded", backend: "runpod-next" });
  });
});

/**
 * Webhook delivery end to end: a real gateway, the simulator, and a receiver that verifies every
 * delivery with the `standardwebhooks` package (not with the gateway's own signing code).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { startGateway, startSimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";
import { api, waitForJob, waitForStatus, type JobView } from "./support/client";

const OLD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW_SECRET = "whsec_" + Buffer.from("a fresh secret of 32 bytes......").toString("base64");
const TENANTS = JSON.stringify({ acme: { api_keys: ["sk_acme"], webhook_secrets: [OLD_SECRET, NEW_SECRET] } });

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let dir: string;
let acme: ReturnType<typeof api>;

type Delivery = { event_id: string; type: string; attempt: number; started_at: string; status_code: number | null; error: string | null; next_attempt_at: string | null; response_body: string | null };
type Body = { type: string; timestamp: string; data: JobView };

const body = (d: { json: unknown }) => d.json as Body;
const forJob = (id: string) => receiver.deliveries.filter((d) => body(d).data?.id === id);
const deliveries = async (id: string) => ((await (await acme.get(`/v1/jobs/${id}/deliveries`)).json()) as { data: Delivery[] }).data;

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string, show?: () => Promise<unknown>): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${show ? `: ${JSON.stringify(await show())}` : ""}`);
}

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } });
  receiver = await startReceiver({ secrets: [OLD_SECRET, NEW_SECRET] });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-webhooks-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS,
      BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url }]),
      ALLOW_PRIVATE_URLS: "true",
      WEBHOOK_RETRY_SCHEDULE: "1,1,1",
      URL_SIGNING_SECRET: "e2e",
    },
  });
  acme = api(gw.url, "sk_acme");
});

afterAll(async () => {
  await gw?.stop();
  await receiver?.close();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const submit = async (extra: Record<string, unknown>) =>
  ((await (await acme.post("/v1/jobs", { type: "txt2img", prompt: "hook", width: 64, height: 64, track_id: "t-1", ...extra })).json()) as JobView).id;

describe("webhook delivery", () => {
  it("delivers a body too large for a storage row whole: RunPod's echo of an input with a ControlNet image, generated once", async () => {
    // Noise does not compress: a PNG of about 2.4 MB, 3.2 MB as base64, echoed in the body twice (input, output.parameters).
    const noise = Buffer.from(encodePng(900, 900, () => [Math.random() * 256, Math.random() * 256, Math.random() * 256])).toString("base64");
    const input = { api_name: "txt2img", prompt: "a bridge", width: 64, height: 64, alwayson_scripts: { controlnet: { args: [{ image: noise, module: "canny" }] } } };
    const generations = async () => (await sim.stats()).requests["/sdapi/v1/txt2img"] ?? 0;
    const before = await generations();
    const res = await fetch(`${gw.url}/v2/any-endpoint/run`, { method: "POST", headers: { authorization: "Bearer sk_acme", "content-type": "application/json" }, body: JSON.stringify({ input, webhook: `${receiver.url}/large-body` }) });
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: string };
    const hit = await receiver.waitFor((d) => d.path === "/large-body" && (d.json as { id?: string } | undefined)?.id === id, 30_000);
    expect(hit.verified).toEqual([true, true]);
    expect(hit.json).toMatchObject({ id, status: "COMPLETED", input: { alwayson_scripts: { controlnet: { args: [{ image: noise }] } } } });
    expect((await generations()) - before).toBe(1);
  });

  it("signs with every tenant secret; the body is the job as GET returns it, track_id included", async () => {
    const id = await submit({ webhook: `${receiver.url}/ok` });
    const hit = await receiver.waitFor((d) => body(d).data?.id === id, 30_000);
    expect(hit.verified).toEqual([true, true]);
    expect(hit.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(body(hit).type).toBe("job.succeeded");
    expect(body(hit).data).toMatchObject({ id, status: "succeeded", track_id: "t-1" });
    const job = await waitForJob(acme, id);
    expect(body(hit).data.output.map((o) => o.seed)).toEqual(job.output.map((o) => o.seed));
  });

  it("retries 500, 500, then 200: three attempts under one webhook-id, each with a fresh timestamp, all logged", async () => {
    receiver.script([{ status: 500, body: "boom" }, { status: 500 }]);
    const id = await submit({ webhook: `${receiver.url}/flaky` });
    const log = await until(async () => {
      const rows = await deliveries(id);
      return rows.length >= 3 && rows[2]?.status_code === 200 ? rows : undefined;
    }, 30_000, "three attempts", () => deliveries(id));
    expect(log.map((r) => r.status_code)).toEqual([500, 500, 200]);
    expect(log.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(new Set(log.map((r) => r.event_id)).size).toBe(1);
    expect(log[0]?.response_body).toBe("boom");
    expect(log[0]?.next_attempt_at).not.toBeNull();
    expect(log[2]?.next_attempt_at).toBeNull();
    const hits = forJob(id);
    expect(hits).toHaveLength(3);
    expect(new Set(hits.map((h) => h.headers["webhook-id"])).size).toBe(1);
    expect(new Set(hits.map((h) => h.body)).size).toBe(1);
    expect(hits.every((h) => h.verified.every(Boolean))).toBe(true);
  });

  it("stops at a 410 and records it", async () => {
    receiver.script([{ status: 410 }]);
    const id = await submit({ webhook: `${receiver.url}/gone` });
    await until(async () => ((await deliveries(id)).length ? true : undefined), 30_000, "first attempt");
    await new Promise((r) => setTimeout(r, 3000));
    const log = await deliveries(id);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ status_code: 410, next_attempt_at: null });
    const events = ((await (await acme.get(`/v1/jobs/${id}/events`)).json()) as { data: { type: string }[] }).data.map((e) => e.type);
    expect(events.at(-1)).toBe("webhook.gone");
  });

  it("treats a redirect as a failed attempt and does not follow it", async () => {
    receiver.script([{ status: 302, headers: { location: `${receiver.url}/elsewhere` } }]);
    const id = await submit({ webhook: `${receiver.url}/moved` });
    const log = await until(async () => {
      const rows = await deliveries(id);
      return rows.length >= 2 ? rows : undefined;
    }, 30_000, "a retry after the redirect");
    expect(log[0]?.status_code).toBe(302);
    expect(receiver.deliveries.some((d) => d.path === "/elsewhere")).toBe(false);
  });

  it("records a receiver that hangs as a timeout, then retries", async () => {
    receiver.script(["hang"]);
    const id = await submit({ webhook: `${receiver.url}/hang` });
    const log = await until(async () => {
      const rows = await deliveries(id);
      return rows.length >= 2 ? rows : undefined;
    }, 60_000, "a retry after the timeout", () => deliveries(id));
    expect(log[0]).toMatchObject({ status_code: null });
    expect(log[0]?.error).toMatch(/timeout/);
    expect(log[1]?.status_code).toBe(200);
  });

  it("sends job.started before job.succeeded when asked for both", async () => {
    const id = await submit({ webhook: `${receiver.url}/both`, webhook_events: ["job.started", "job.succeeded"] });
    await until(() => (forJob(id).length >= 2 ? true : undefined), 30_000, "two events");
    expect(forJob(id).map((d) => body(d).type)).toEqual(["job.started", "job.succeeded"]);
    // Its data is the job as a read shows it running: on the backend its attempt began on.
    const [started, ended] = forJob(id).map((d) => body(d).data);
    expect(started).toMatchObject({ status: "running", backend: ended?.backend });
    expect(started?.backend).toEqual(expect.any(String));
  });

  it("redelivers the terminal event with the same webhook-id and a fresh signature", async () => {
    const id = await submit({ webhook: `${receiver.url}/again` });
    const first = await receiver.waitFor((d) => body(d).data?.id === id, 30_000);
    await new Promise((r) => setTimeout(r, 1100));
    const res = await acme.post(`/v1/jobs/${id}/deliveries/redeliver`);
    expect(res.status).toBe(202);
    await until(() => (forJob(id).length >= 2 ? true : undefined), 30_000, "the redelivery");
    const second = forJob(id)[1];
    expect(second?.headers["webhook-id"]).toBe(first.headers["webhook-id"]);
    expect(second?.headers["webhook-timestamp"]).not.toBe(first.headers["webhook-timestamp"]);
    expect(second?.verified).toEqual([true, true]);
  });

  it("sends the terminal event again when the redelivery is asked while a try of it is still out", async () => {
    // A receiver that takes 2 s over its first answer.
    const hits: string[] = [];
    const slow = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        hits.push(String(req.headers["webhook-id"]));
        setTimeout(() => res.writeHead(200).end(), hits.length === 1 ? 2000 : 0);
      });
    });
    await new Promise<void>((r) => slow.listen(0, "127.0.0.1", r));
    try {
      const id = await submit({ webhook: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/slow` });
      await until(() => (hits.length === 1 ? true : undefined), 30_000, "the first try");
      expect((await acme.post(`/v1/jobs/${id}/deliveries/redeliver`)).status).toBe(202);
      await until(() => (hits.length === 2 ? true : undefined), 30_000, "the redelivery", () => deliveries(id));
      expect(hits[1]).toBe(hits[0]);
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });

  it("yields exactly one terminal event, job.canceled, for a job canceled while running", async () => {
    await sim.config({ msPerImage: 3000 });
    try {
      const id = await submit({ webhook: `${receiver.url}/cancel` });
      await waitForStatus(acme, id, "running");
      expect((await acme.post(`/v1/jobs/${id}/cancel`)).status).toBe(200);
      await receiver.waitFor((d) => body(d).data?.id === id, 30_000);
      await new Promise((r) => setTimeout(r, 4000));
      expect(forJob(id).map((d) => body(d).type)).toEqual(["job.canceled"]);
    } finally {
      await sim.config({ msPerImage: 20 });
    }
  });

  it("still delivers an event when the gateway is stopped between two attempts", async () => {
    // Retry-After pushes the second attempt 3 s out (past the 1 s schedule), into the downtime.
    receiver.script([{ status: 503, headers: { "retry-after": "3" } }]);
    const id = await submit({ webhook: `${receiver.url}/restart` });
    const first = await until(async () => (await deliveries(id))[0], 30_000, "first attempt");
    expect(Date.parse(first.next_attempt_at ?? "") - Date.parse(first.started_at)).toBeGreaterThanOrEqual(3000);
    await gw.stop();
    await new Promise((r) => setTimeout(r, 1500));
    expect(forJob(id)).toHaveLength(1);
    await gw.restart();
    const log = await until(async () => {
      const rows = await deliveries(id);
      return rows.some((r) => r.status_code === 200) ? rows : undefined;
    }, 60_000, "delivery after restart");
    expect(log.map((r) => r.status_code)).toEqual([503, 200]);
    expect(forJob(id).every((d) => d.verified.every(Boolean))).toBe(true);
  });
});

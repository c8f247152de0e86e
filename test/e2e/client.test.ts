/** The typed client (client/) end to end: submit, wait, download, verify a webhook, against a real gateway. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEaselClient, EaselApiError, verifyWebhook, type JobEvent } from "../../client";
import { CLIENT_TYPES_PATH, renderClientTypes } from "../../scripts/client-types";
import { pngSize } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let dir: string;

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 100 }) } });
  receiver = await startReceiver({ secrets: [SECRET] });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-client-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ acme: { api_keys: ["sk_client"], webhook_secrets: [SECRET] } }),
      BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url, max_concurrency: 2 }]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the typed client", () => {
  it("submits, waits on the event stream, downloads the PNG and verifies the webhook", async () => {
    const easel = createEaselClient({ baseUrl: gw.url, apiKey: "sk_client" });
    const queued = await easel.submit({ type: "txt2img", prompt: "a cat wizard", width: 128, height: 64, seed: 5, track_id: "client-1", webhook: `${receiver.url}/hook` });
    expect(queued.status).toBe("queued");
    const seen: JobEvent[] = [];
    const done = await easel.waitForJob(queued.id, { timeoutMs: 30_000, onEvent: (e) => seen.push(e) });
    expect(done).toMatchObject({ id: queued.id, status: "succeeded", track_id: "client-1" });
    expect(seen.map((e) => e.type)).toContain("job.succeeded");
    const png = await easel.download(done.output[0]?.url ?? "");
    expect(pngSize(png)).toEqual({ width: 128, height: 64 });

    const hook = await receiver.waitFor((d) => (d.json as { data?: { id?: string } }).data?.id === queued.id, 15_000);
    const event = verifyWebhook(SECRET, hook.body, hook.headers);
    expect(event).toMatchObject({ type: "job.succeeded", data: { id: queued.id, track_id: "client-1" } });
    expect(() => verifyWebhook(SECRET, hook.body.replace("client-1", "client-2"), hook.headers)).toThrow();
    expect(() => verifyWebhook("whsec_dGhlIHdyb25nIHNlY3JldCBrZXkgMTIzNA==", hook.body, hook.headers)).toThrow();

    expect((await easel.list({ track_id: "client-1" })).data.map((j) => j.id)).toEqual([queued.id]);
    expect((await easel.deliveries(queued.id))[0]).toMatchObject({ type: "job.succeeded", status_code: 200 });
  });

  it("falls back to polling when the event stream cannot be had", async () => {
    const calls = { streams: 0, polls: 0 };
    const noStreams: typeof fetch = (input, init) => {
      const accept = new Headers(init?.headers).get("accept") ?? (input instanceof Request ? input.headers.get("accept") : null);
      if (accept === "text/event-stream") {
        calls.streams++;
        return Promise.reject(new TypeError("streams blocked here"));
      }
      calls.polls++;
      return fetch(input, init);
    };
    const easel = createEaselClient({ baseUrl: gw.url, apiKey: "sk_client", fetch: noStreams });
    const queued = await easel.submit({ type: "txt2img", prompt: "polled", width: 64, height: 64 });
    calls.polls = 0;
    expect((await easel.waitForJob(queued.id, { timeoutMs: 30_000, pollMs: 100 })).status).toBe("succeeded");
    expect(calls.streams).toBe(1);
    expect(calls.polls).toBeGreaterThanOrEqual(1);
  });

  it("throws the API's error with its code and the bad fields", async () => {
    const easel = createEaselClient({ baseUrl: gw.url, apiKey: "sk_client" });
    const err = await easel.submit({ type: "txt2img", prompt: "", width: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EaselApiError);
    expect(err).toMatchObject({ status: 422, code: "validation_failed" });
    expect((err as EaselApiError).details?.map((d) => d.path).sort()).toEqual(["prompt", "width"]);
    const bad = await createEaselClient({ baseUrl: gw.url, apiKey: "sk_nobody" }).get("run_aaaaaaaaaaaaaaaaaaaaaaaaaa").catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 401, code: "unauthorized" });
  });

  it("has types generated from the gateway's current /openapi.json (else: npm run client:generate)", async () => {
    const live = await renderClientTypes(await (await fetch(`${gw.url}/openapi.json`)).text());
    expect(readFileSync(CLIENT_TYPES_PATH, "utf8") === live, "client/openapi.d.ts is out of date: run npm run client:generate").toBe(true);
  });
});

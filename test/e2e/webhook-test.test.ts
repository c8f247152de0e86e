/** `POST /v1/webhooks/test` against a real gateway and a real standardwebhooks receiver. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "./support/client";
import { freePort, startGateway } from "./support/processes";
import { startReceiver } from "./support/receiver";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
let gw: Awaited<ReturnType<typeof startGateway>>;
let guarded: Awaited<ReturnType<typeof startGateway>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let dirs: string[] = [];

type Result = { webhook_id: string; status_code: number | null; error: string | null; duration_ms: number; response_body: string | null; signature_headers: Record<string, string> };

beforeAll(async () => {
  receiver = await startReceiver({ secrets: [SECRET] });
  dirs = [mkdtempSync(join(tmpdir(), "easel-e2e-whtest-")), mkdtempSync(join(tmpdir(), "easel-e2e-whtest-"))];
  const tenants = (withDefault: boolean) =>
    JSON.stringify({
      acme: { api_keys: ["sk_acme"], webhook_secrets: [SECRET], ...(withDefault ? { default_webhook: `${receiver.url}/default` } : {}) },
      bare: { api_keys: ["sk_bare"], webhook_secrets: [SECRET] },
    });
  [gw, guarded] = await Promise.all([
    startGateway({ persistDir: dirs[0] ?? "", vars: { TENANTS: tenants(true), BACKENDS: "[]", ALLOW_PRIVATE_URLS: "true", URL_SIGNING_SECRET: "e2e" } }),
    startGateway({ persistDir: dirs[1] ?? "", vars: { TENANTS: tenants(false), BACKENDS: "[]", ALLOW_PRIVATE_URLS: "false", URL_SIGNING_SECRET: "e2e" } }),
  ]);
});

afterAll(async () => {
  await gw?.stop();
  await guarded?.stop();
  await receiver?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("POST /v1/webhooks/test", () => {
  it("sends one signed webhook.test event and answers with what the receiver said", async () => {
    receiver.script([{ status: 201, body: "hello from the receiver" }]);
    const before = receiver.deliveries.length;
    const res = await api(gw.url, "sk_acme").post("/v1/webhooks/test", { url: `${receiver.url}/check` });
    expect(res.status).toBe(200);
    const result = (await res.json()) as Result;
    expect(result).toMatchObject({ status_code: 201, error: null, response_body: "hello from the receiver" });
    expect(result.webhook_id).toMatch(/^msg_/);
    const got = receiver.deliveries.slice(before);
    expect(got).toHaveLength(1);
    expect(got[0]?.verified).toEqual([true]);
    expect(got[0]?.json).toMatchObject({ type: "webhook.test", timestamp: expect.any(String), data: { tenant: "acme", url: `${receiver.url}/check` } });
    expect(got[0]?.headers["webhook-id"]).toBe(result.webhook_id);
    expect(result.signature_headers).toEqual({ "webhook-id": result.webhook_id, "webhook-timestamp": got[0]?.headers["webhook-timestamp"], "webhook-signature": got[0]?.headers["webhook-signature"] });
  });

  it("uses the tenant's default_webhook when no url is given, and sends a failing test only once", async () => {
    receiver.script([{ status: 500, body: "nope" }]);
    const before = receiver.deliveries.length;
    const res = await fetch(`${gw.url}/v1/webhooks/test`, { method: "POST", headers: { authorization: "Bearer sk_acme" } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status_code: 500, error: expect.stringContaining("500"), response_body: "nope" });
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.deliveries.slice(before).map((d) => d.path)).toEqual(["/default"]);
  });

  it("reports an unreachable receiver as status_code null with an error", async () => {
    const res = await api(gw.url, "sk_acme").post("/v1/webhooks/test", { url: `http://127.0.0.1:${await freePort()}/gone` });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status_code: null, error: expect.stringMatching(/network error/) });
  });

  it("is a 422 without url or default_webhook, and for a URL the gateway may not call", async () => {
    const none = await api(gw.url, "sk_bare").post("/v1/webhooks/test", {});
    expect(none.status).toBe(422);
    expect(JSON.stringify(await none.json())).toContain('"path":"url"');
    for (const url of ["http://127.0.0.1:9/x", "https://2130706433/x", "https://[::ffff:169.254.169.254]/x", "https://user:pw@example.com/x", "ftp://example.com/x"]) {
      const res = await api(guarded.url, "sk_acme").post("/v1/webhooks/test", { url });
      expect(res.status, url).toBe(422);
    }
  });
});

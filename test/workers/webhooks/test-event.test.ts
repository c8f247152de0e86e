import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sendTestEvent } from "../../../src/webhooks/test-event";

describe("a test event", () => {
  const withDefault = (default_webhook: string) => ({ ...env, TENANTS: JSON.stringify({ acme: { api_keys: ["sk_acme_1"], default_webhook } }) });

  it("to a default_webhook the gateway may not call is the operator's 500 naming TENANTS, not a 422 on a url the request never sent", async () => {
    const err = await sendTestEvent(withDefault("https://user:PASSW0RD@hooks.example.com/easel"), "acme", undefined).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 500, message: expect.stringMatching(/^TENANTS is invalid: acme\.default_webhook/) });
    expect(String((err as Error).message)).not.toContain("PASSW0RD");
  });

  it("to a url the request gave that the gateway may not call is a 422 naming url", async () => {
    await expect(sendTestEvent(env, "acme", "https://user:PASSW0RD@hooks.example.com/easel")).rejects.toMatchObject({ status: 422, details: [{ path: "url" }] });
  });
});

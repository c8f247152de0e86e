import { describe, expect, it } from "vitest";
import { preferWait } from "../../../../src/dialects/replicate/routes";
import { call } from "../support";

describe("Prefer: wait", () => {
  it("wait is 60 s, wait=n is n; no preference holds nothing", () => {
    expect(preferWait("wait")).toBe(60);
    expect(preferWait("wait=5")).toBe(5);
    expect(preferWait("respond-async, wait=10")).toBe(10);
    expect(preferWait(undefined)).toBeUndefined();
    expect(preferWait("return=minimal")).toBeUndefined();
  });

  it("n outside 1–60 or not a number is a 422 naming Prefer", () => {
    for (const header of ["wait=0", "wait=61", "wait=soon"]) expect(() => preferWait(header)).toThrow(/Prefer/);
  });
});

describe("Replicate routes", () => {
  it("answer problems: 401 without a key, 404 for a prediction that does not exist", async () => {
    const anonymous = await call("/v1/predictions/run_abcdefghijklmnopqrstuvwxyz");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("content-type")).toBe("application/problem+json");
    const missing = await call("/v1/predictions/run_abcdefghijklmnopqrstuvwxyz", { headers: { authorization: "Token sk_acme_1" } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ title: "Not found", status: 404, detail: expect.any(String) });
  });

  it("the webhook secret is the tenant's first, with Token auth as with Bearer", async () => {
    for (const authorization of ["Token sk_acme_1", "Bearer sk_acme_1"]) {
      const res = await call("/v1/webhooks/default/secret", { headers: { authorization } });
      expect(await res.json()).toEqual({ key: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" });
    }
  });

  it("a Replicate resource Easel does not serve (hardware, collections, trainings) is a 404 problem, as the clients read errors", async () => {
    for (const path of ["/v1/hardware", "/v1/collections/super-resolution", "/v1/trainings"]) {
      const res = await call(path, { headers: { authorization: "Bearer sk_acme_1" } });
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type"), path).toBe("application/problem+json");
    }
  });

  it("an unlisted model is a 404 problem before anything is created", async () => {
    const res = await call("/v1/models/nobody/nothing/predictions", { headers: { authorization: "Bearer sk_acme_1" }, body: { input: { prompt: "x" } } });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });
});

import { describe, expect, it } from "vitest";
import { toEaselError } from "../../../src/app";
import { config } from "../../../src/config";
import type { Env } from "../../../src/env";
import { EaselError } from "../../../src/errors";

const envWith = (vars: Partial<Env>): Env => vars as Env;

function failure(fn: () => unknown): EaselError {
  try {
    fn();
  } catch (err) {
    if (err instanceof EaselError) return err;
    throw err;
  }
  throw new Error("expected a configuration error");
}

describe("configuration", () => {
  it("names the variable and the problem without echoing a secret", () => {
    const secret = "sk_super_secret_value";
    const err = failure(() => config.tenants(envWith({ TENANTS: `{"acme": {"api_keys": "${secret}"}}` })));
    expect(err.status).toBe(500);
    expect(err.message).toMatch(/^TENANTS is invalid: acme\.api_keys/);
    expect(err.message).not.toContain(secret);
    expect(failure(() => config.backends(envWith({ BACKENDS: "[not json" }))).message).toBe("BACKENDS is invalid: not valid JSON");
    expect(failure(() => config.retrySchedule(envWith({ WEBHOOK_RETRY_SCHEDULE: "5,soon" }))).message).toMatch(/^WEBHOOK_RETRY_SCHEDULE/);
    expect(failure(() => config.allowPrivateUrls(envWith({ ALLOW_PRIVATE_URLS: "yes" }))).message).toMatch(/^ALLOW_PRIVATE_URLS/);
  });

  it("fills backend defaults: a1111 also upscales, runpod generates (upscale opt-in), cerebrium serves img2img only", () => {
    const backends = config.backends(
      envWith({
        BACKENDS: JSON.stringify([
          { name: "a", kind: "a1111", url: "http://a:7860/" },
          { name: "r", kind: "runpod", url: "https://api.runpod.ai/v2/abc" },
          { name: "c", kind: "cerebrium", url: "https://run.cerebrium.ai/p/predict" },
        ]),
      }),
    );
    // A1111 generates one image at a time (and upscales); the others scale out behind one endpoint.
    expect(backends[0]).toMatchObject({ url: "http://a:7860", types: ["img2img", "txt2img", "upscale"], max_concurrency: 1, timeout_s: 600 });
    expect(backends[1]).toMatchObject({ types: ["img2img", "txt2img"], max_concurrency: 4 });
    expect(backends[2]).toMatchObject({ types: ["img2img"], max_concurrency: 4 });
  });

  it("refuses a cerebrium backend that claims to upscale", () => {
    const bad = JSON.stringify([{ name: "c", kind: "cerebrium", url: "https://run.cerebrium.ai/p/predict", types: ["img2img", "upscale"] }]);
    expect(failure(() => config.backends(envWith({ BACKENDS: bad }))).message).toMatch(/^BACKENDS is invalid: 0\.types: a cerebrium backend cannot upscale/);
  });

  it("reads ENDPOINTS, and names an endpoint whose backend does not exist", () => {
    const env = envWith({
      BACKENDS: JSON.stringify([{ name: "a", kind: "a1111", url: "http://a:7860" }]),
      ENDPOINTS: JSON.stringify({ abc123: { backend: "a", model: "v1-5", types: ["txt2img"] }, ghost: { backend: "nope" } }),
    });
    expect(config.endpoint(env, "abc123")).toEqual({ backend: "a", model: "v1-5", types: ["txt2img"] });
    expect(config.endpoint(env, "unlisted")).toBeUndefined();
    expect(failure(() => config.endpoint(env, "ghost")).message).toBe('ENDPOINTS is invalid: ghost.backend: no backend named "nope"');
    expect(failure(() => config.endpoint(envWith({ ENDPOINTS: '{"x": {"typo": 1}}' }), "x")).message).toMatch(/^ENDPOINTS is invalid: x/);
  });

  it("refuses one API key under two tenants (either would act as the other), without echoing it", () => {
    const key = "sk_shared_by_mistake";
    const err = failure(() => config.tenants(envWith({ TENANTS: JSON.stringify({ acme: { api_keys: ["sk_acme", key] }, beta: { api_keys: [key] } }) })));
    expect(err.message).toBe("TENANTS is invalid: beta.api_keys.0: the same key is also one of acme's");
    expect(err.message).not.toContain(key);
    // Listed twice for one tenant is only untidy: it names no one else.
    expect(config.tenants(envWith({ TENANTS: JSON.stringify({ acme: { api_keys: [key, key] } }) })).size).toBe(1);
  });

  it("refuses a backend URL or default_webhook that is no http(s) URL with a host: a typo is the operator's 500, not failing jobs", () => {
    for (const url of ["htp:/127.0.0.1:7860/", "ftp://gpu", "file:///etc/passwd", "mailto:ops@example.com", "127.0.0.1:7860", "not a url", "http://"]) {
      expect(failure(() => config.backends(envWith({ BACKENDS: JSON.stringify([{ name: "a", kind: "a1111", url }]) }))).message, url).toMatch(/^BACKENDS is invalid: 0\.url: must be an http\(s\) URL with a host/);
    }
    for (const hook of ["mailto:ops@example.com", "receiver.example/hook"]) {
      expect(failure(() => config.tenants(envWith({ TENANTS: JSON.stringify({ acme: { api_keys: ["k"], default_webhook: hook } }) }))).message, hook).toMatch(/^TENANTS is invalid: acme\.default_webhook/);
    }
    expect(config.backends(envWith({ BACKENDS: JSON.stringify([{ name: "a", kind: "a1111", url: "https://gpu.example.com:7860" }]) }))[0]?.url).toBe("https://gpu.example.com:7860");
  });

  it("refuses two backends with one name", () => {
    const twice = JSON.stringify([1, 2].map(() => ({ name: "a", kind: "a1111", url: "http://a:7860" })));
    expect(failure(() => config.backends(envWith({ BACKENDS: twice }))).message).toMatch(/duplicate backend name/);
  });

  it("uses the documented retry schedule by default, and refuses an empty entry rather than retry at once", () => {
    expect(config.retrySchedule(envWith({}))).toEqual([5, 300, 1800, 7200, 18000, 36000, 36000]);
    expect(config.retrySchedule(envWith({ WEBHOOK_RETRY_SCHEDULE: " 1, 5 " }))).toEqual([1, 5]);
    expect(failure(() => config.retrySchedule(envWith({ WEBHOOK_RETRY_SCHEDULE: "5,,300" }))).message).toMatch(/^WEBHOOK_RETRY_SCHEDULE is invalid/);
  });

  it("refuses a webhook secret whose base64 does not decode, without echoing it", () => {
    const err = failure(() => config.tenants(envWith({ TENANTS: JSON.stringify({ acme: { api_keys: ["k"], webhook_secrets: ["whsec_A"] } }) })));
    expect(err.message).toMatch(/^TENANTS is invalid: acme\.webhook_secrets\.0: /);
    expect(err.message).not.toContain("whsec_A");
    expect(config.tenants(envWith({ TENANTS: JSON.stringify({ acme: { api_keys: ["k"], webhook_secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] } }) })).size).toBe(1);
  });

  it("keeps a configuration error's 500 naming the variable when it comes back from a Durable Object as a plain Error", () => {
    // The message as an RPC hands it back, the class's name before it.
    const e = toEaselError(new Error("EaselError: RETENTION_S is invalid: expected whole seconds, at least 60"));
    expect(e).toMatchObject({ status: 500, code: "config_invalid", message: "RETENTION_S is invalid: expected whole seconds, at least 60" });
    expect(toEaselError(new Error("something else broke"))).toMatchObject({ status: 500, code: "internal_error" });
  });
});

describe("URL_SIGNING_SECRET", () => {
  it("reads a comma-separated list, the first one signing", () => {
    expect(config.urlSigningSecrets(envWith({ URL_SIGNING_SECRET: "k1" }))).toEqual(["k1"]);
    expect(config.urlSigningSecrets(envWith({ URL_SIGNING_SECRET: " new , old ,, " }))).toEqual(["new", "old"]);
  });

  it("has no built-in key: none configured is a 500 naming the variable, whatever NODE_ENV says", () => {
    const before = process.env.NODE_ENV;
    try {
      for (const mode of ["development", "test", "production", undefined]) {
        if (mode === undefined) delete process.env.NODE_ENV;
        else process.env.NODE_ENV = mode;
        for (const value of [undefined, "", " , "]) {
          const err = failure(() => config.urlSigningSecrets(envWith({ URL_SIGNING_SECRET: value })));
          expect(err).toMatchObject({ status: 500, code: "config_invalid" });
          expect(err.message).toMatch(/^URL_SIGNING_SECRET is invalid: not set/);
        }
      }
    } finally {
      process.env.NODE_ENV = before;
    }
  });
});

import { env } from "cloudflare:workers";
import { createExecutionContext, listDurableObjectIds, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { RunPodRequestSchema, echoedInput, fromRunPod, isGeneration, policyLimits, runPodData, runpodError, toRunPodStatus, toRunPodWebhook, type GenerationInput } from "../../../src/dialects/runpod/translate";
import { EaselError } from "../../../src/errors";
import worker from "../../../src/index";
import { base32, randomId } from "../../../src/lib/crypto";
import seed from "../../fixtures/seeds/runpod-img2img.json";
import { RUN_ID, call, fakeImages, snapshot } from "./support";

const generation = (input: unknown): GenerationInput => {
  const parsed = RunPodRequestSchema.parse({ input }).input;
  if (!isGeneration(parsed)) throw new Error("not a generation");
  return parsed;
};

describe("RunPod request → canonical job", () => {
  it("reads seed 000's body: api_name picks the call, the rest is A1111's payload", () => {
    const input = generation(seed.input);
    expect(fromRunPod(input, "https://hooks.example/rp", "v1-5")).toMatchObject({ type: "img2img", prompt: "Vaporwave 50s woman", seed: 42, steps: 20, init_image: "<BASE_64_STRING>", model: "v1-5", webhook: "https://hooks.example/rp", a1111_extra: {} });
    // The job keeps the request without its images, as A1111 echoes it, and the input as sent for the webhook.
    expect(runPodData(input, "abc123", echoedInput(seed))).toEqual({
      endpoint: "abc123",
      parameters: { prompt: "Vaporwave 50s woman", seed: 42, steps: 20, init_images: null, mask: null },
      input: { api_name: "img2img", prompt: "Vaporwave 50s woman", seed: 42, steps: 20 },
    });
  });

  it("keeps the input as sent for the webhook: api_name, unknown fields and values as written, the image payloads left out", () => {
    const body = { input: { api_name: "img2img", prompt: "p", steps: "20", seed: null, user_ref: "order-42", meta: { n: 1 }, init_images: ["AAAA"], mask: "BBBB", image: "CCCC" }, webhook: "https://hooks.example/rp" };
    expect(echoedInput(body)).toEqual({ api_name: "img2img", prompt: "p", steps: "20", seed: null, user_ref: "order-42", meta: { n: 1 } });
    for (const odd of [null, {}, { input: null }, { input: [1] }, "text"]) expect(echoedInput(odd)).toEqual({});
  });

  it("takes webhook and policy sent as null (Python's None) as if left out", () => {
    const parsed = RunPodRequestSchema.safeParse({ input: { api_name: "txt2img", prompt: "x" }, webhook: null, policy: null });
    expect(parsed.success).toBe(true);
    expect(RunPodRequestSchema.safeParse({ input: { api_name: "getModels" }, policy: { executionTimeout: null, ttl: null, lowPriority: null } }).success).toBe(true);
    const input = generation({ api_name: "txt2img", prompt: "x" });
    expect(fromRunPod(input, null, undefined).webhook).toBeUndefined();
    expect(policyLimits(parsed.data?.policy)).toEqual({ timeout_s: undefined, run_timeout_s: undefined });
  });

  it("tells the worker's settings calls from generations, and refuses an unknown call", () => {
    for (const api_name of ["getModels", "getOptions", "setOptions"]) expect(isGeneration(RunPodRequestSchema.parse({ input: { api_name } }).input)).toBe(false);
    expect(RunPodRequestSchema.safeParse({ input: { api_name: "setOptions", sd_model_checkpoint: 7 } }).success).toBe(false);
    const unknown = RunPodRequestSchema.safeParse({ input: { api_name: "upscale" } });
    expect(unknown.error?.issues[0]?.path).toEqual(["input", "api_name"]);
  });
});

describe("canonical job → RunPod status object", () => {
  it("names a job that ran out of its time TIMED_OUT, any other failure FAILED", async () => {
    expect((await toRunPodStatus(snapshot({ status: "failed", error: { code: "timeout", message: "the job did not finish within 10 s" } }), fakeImages)).status).toBe("TIMED_OUT");
    expect((await toRunPodStatus(snapshot({ status: "failed", error: { code: "backend_failed", message: "boom" } }), fakeImages)).status).toBe("FAILED");
  });

  it("turns policy.executionTimeout into the job's run limit and ttl into its timeout_s, clamped to what the gateway keeps", () => {
    // RunPod's docs' long-running example: 48 h of running within 72 h; the gateway keeps a job an hour at most.
    expect(policyLimits({ executionTimeout: 172_800_000, ttl: 259_200_000 })).toEqual({ timeout_s: 3600, run_timeout_s: 3600 });
    expect(policyLimits({ executionTimeout: 5_000 })).toEqual({ timeout_s: undefined, run_timeout_s: 5 });
    expect(policyLimits({ executionTimeout: 10_500, ttl: 60_000 })).toEqual({ timeout_s: 60, run_timeout_s: 11 });
    expect(policyLimits({ ttl: 10_000 })).toEqual({ timeout_s: 10, run_timeout_s: undefined });
    // No ttl is RunPod's default of 24 h: as long as the gateway lets a job live.
    expect(policyLimits(undefined)).toEqual({ timeout_s: undefined, run_timeout_s: undefined });
    // Outside RunPod's own bounds (executionTimeout 5 s–7 days, ttl 10 s–7 days) it is refused, as RunPod refuses it.
    expect(() => policyLimits({ executionTimeout: 1_000 })).toThrow(/policy.executionTimeout/);
    expect(() => policyLimits({ ttl: 8 * 86_400_000 })).toThrow(/policy.ttl/);
  });

  it("maps the states onto IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED", async () => {
    const expected = { queued: "IN_QUEUE", running: "IN_PROGRESS", succeeded: "COMPLETED", failed: "FAILED", canceled: "CANCELLED" } as const;
    for (const [status, runpod] of Object.entries(expected)) {
      expect((await toRunPodStatus(snapshot({ status: status as keyof typeof expected, dialect: "runpod" }), fakeImages)).status).toBe(runpod);
    }
  });

  it("carries the A1111 response as output when COMPLETED, the error when FAILED", async () => {
    const done = await toRunPodStatus(snapshot({ dialect: "runpod", dialect_data: { parameters: { prompt: "apple" } } }), fakeImages);
    expect(done).toMatchObject({ id: RUN_ID, status: "COMPLETED", delayTime: 1000, executionTime: 2500, output: { images: ["img0", "img1"], parameters: { prompt: "apple" } } });
    expect(JSON.parse((done.output as { info: string }).info)).toMatchObject({ seed: 42, all_seeds: [42, 43] });
    const failed = await toRunPodStatus(snapshot({ status: "failed", error: { code: "backend_failed", message: "boom" } }), fakeImages);
    expect(failed).toMatchObject({ status: "FAILED", error: "boom" });
    expect(failed.output).toBeUndefined();
  });

  it("posts RunPod's webhook body: the status object with the request's input and webhook; /status stays without them", async () => {
    const input = { api_name: "txt2img", prompt: "apple", user_ref: "order-42" };
    const done = snapshot({ dialect: "runpod", dialect_data: { parameters: { prompt: "apple" }, input } });
    done.input.webhook = "https://hooks.example/rp";
    const body = await toRunPodWebhook(done, fakeImages, Date.now());
    expect(body).toMatchObject({ id: RUN_ID, status: "COMPLETED", delayTime: 1000, executionTime: 2500, output: { images: ["img0", "img1"] }, input, webhook: "https://hooks.example/rp" });
    expect(Object.keys(await toRunPodStatus(done, fakeImages))).not.toContain("input");
  });

  it("shapes errors as {error}", () => {
    expect(runpodError(new EaselError(404, "not_found", "job not found"))).toEqual({ error: "job not found" });
  });
});

describe("/runpod inside the Worker", () => {
  it("takes the key raw or as Bearer, and answers errors in its shape with a 4xx", async () => {
    const anon = await call("/runpod/run", { headers: { authorization: "Bearer nope" }, body: seed });
    expect(anon.status).toBe(401);
    expect(await anon.json()).toMatchObject({ error: expect.any(String) });
    const wide = await call("/runpod/run", { headers: { authorization: "sk_acme_1" }, body: { input: { ...seed.input, width: 4096 } } });
    expect(wide.status).toBe(422);
    expect(await wide.json()).toMatchObject({ details: [{ path: "input.width" }] });
    const missing = await call("/runpod/status/sync-123", { headers: { authorization: "Bearer sk_acme_1" } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: "job not found" });
    expect((await call(`/runpod/cancel/${RUN_ID}`, { headers: { authorization: "sk_acme_1" }, body: {} })).status).toBe(404);
  });

  it("names the request's own model field when no backend serves that model for the call", async () => {
    // "two-lines" is listed, but only by img2img backends: a txt2img for it has nowhere to run.
    const body = { input: { api_name: "txt2img", prompt: "x", alwayson_scripts: { sd_model_checkpoint: "two-lines" } } };
    const res = await call("/runpod/run", { headers: { authorization: "sk_acme_1" }, body });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ details: [{ path: "input.alwayson_scripts.sd_model_checkpoint" }] });
  });

  it("answers a status of an id it never issued with a 404 that stores nothing: no job object, no tenant table", async () => {
    const tenantObject = env.TENANT_STATE.get(env.TENANT_STATE.idFromName("capped"));
    const tables = () => runInDurableObject(tenantObject, (_o, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master").one().n);
    // Run ids well formed then and now, neither minted here, and an id of RunPod's own form.
    const ids = [randomId("run"), `run_${base32(crypto.getRandomValues(new Uint8Array(24)))}`, crypto.randomUUID()];
    for (const id of ids) {
      for (const path of [`/runpod/status/${id}`, `/v2/abc/status/${id}`, `/runpod/stream/${id}`]) {
        const res = await call(path, { headers: { authorization: "sk_capped_1" } });
        expect(res.status).toBe(404);
        expect(await res.json()).toEqual({ error: "job not found" });
      }
      for (const path of [`/runpod/cancel/${id}`, `/runpod/retry/${id}`]) expect((await call(path, { headers: { authorization: "sk_capped_1" }, body: {} })).status).toBe(404);
    }
    const jobObjects = await listDurableObjectIds(env.JOBS);
    for (const id of ids) expect(jobObjects.some((o) => o.equals(env.JOBS.idFromName(id)))).toBe(false);
    // Not even the tenant's object was named: only an id minted for an instant answer is looked for there.
    expect((await listDurableObjectIds(env.TENANT_STATE)).some((o) => o.equals(tenantObject.id))).toBe(false);
    expect(await tables()).toBe(0);
  });
});

describe("an instant answer (getModels...)", () => {
  it("is kept no longer than RETENTION_S when that is under RunPod's 30 minutes, as a job would be", async () => {
    const ctx = createExecutionContext();
    const short = { ...env, RETENTION_S: "60" };
    const res = await worker.fetch(new Request("http://gateway.test/v2/kept/run", { method: "POST", headers: { authorization: "sk_acme_1", "content-type": "application/json" }, body: JSON.stringify({ input: { api_name: "setOptions" } }) }), short, ctx);
    await waitOnExecutionContext(ctx);
    const { id } = (await res.json()) as { id: string };
    const kept = await runInDurableObject(env.TENANT_STATE.get(env.TENANT_STATE.idFromName("acme")), (_o, state) => state.storage.sql.exec<{ expires_at: number }>("SELECT expires_at FROM results WHERE id = ?", id).one().expires_at);
    expect(kept).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(kept).toBeGreaterThan(Date.now() + 50_000);
  });
});

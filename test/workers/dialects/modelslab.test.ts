import { describe, expect, it } from "vitest";
import { ModelsLabRequestSchema, fromModelsLab, modelsLabData, modelsLabError, toModelsLab, toModelsLabWebhook } from "../../../src/dialects/modelslab/translate";
import { env } from "cloudflare:workers";
import { EaselError } from "../../../src/errors";
import seed from "../../fixtures/seeds/modelslab-img2img.json";
import { RUN_ID, call, fakeImages, snapshot } from "./support";

describe("ModelsLab request → canonical job", () => {
  it("reads seed 002's body as it is: numbers as strings, null for what is not given", () => {
    const body = ModelsLabRequestSchema.parse(seed);
    expect(fromModelsLab("img2img", body)).toEqual({
      type: "img2img",
      prompt: "a cat sitting on a bench",
      negative_prompt: undefined,
      init_image: seed.init_image,
      width: 512,
      height: 512,
      samples: 1,
      steps: 30,
      guidance_scale: 7.5,
      strength: 0.7,
      seed: undefined,
      model: undefined,
      webhook: undefined,
      track_id: undefined,
    });
    expect(modelsLabData(body)).toEqual({ base64: false, fetch_path: "/api/v3/fetch" });
    expect(modelsLabData(ModelsLabRequestSchema.parse({ ...seed, base64: "yes" }), "/api/v6/images/fetch")).toEqual({ base64: true, fetch_path: "/api/v6/images/fetch" });
  });

  it("takes the yes/no fields as \"yes\"/\"no\" or as JSON booleans, as ModelsLab's own SDKs send them", () => {
    const asBooleans = ModelsLabRequestSchema.safeParse({ ...seed, base64: true, safety_checker: false, enhance_prompt: true, multi_lingual: false, panorama: false, self_attention: true, tomesd: true, use_karras_sigmas: false });
    expect(asBooleans.error?.issues).toBeUndefined();
    expect(modelsLabData(ModelsLabRequestSchema.parse({ ...seed, base64: true }))).toMatchObject({ base64: true });
    expect(modelsLabData(ModelsLabRequestSchema.parse({ ...seed, base64: false }))).toMatchObject({ base64: false });
    expect(modelsLabData(ModelsLabRequestSchema.parse({ ...seed, base64: "no" }))).toMatchObject({ base64: false });
    expect(modelsLabData(ModelsLabRequestSchema.parse({ ...seed, base64: null }))).toMatchObject({ base64: false });
    expect(ModelsLabRequestSchema.safeParse({ ...seed, base64: "maybe" }).error?.issues.map((i) => i.path.join("."))).toEqual(["base64"]);
  });

  it("refuses a number that is not one, and reads a numeric track_id as a string", () => {
    expect(ModelsLabRequestSchema.safeParse({ ...seed, width: "wide" }).success).toBe(false);
    expect(ModelsLabRequestSchema.parse({ ...seed, track_id: 123, seed: "7" })).toMatchObject({ track_id: "123", seed: 7 });
  });
});

describe("canonical job → ModelsLab body", () => {
  it("answers processing with eta, fetch_result and track_id while the job runs", async () => {
    const body = await toModelsLab(env, snapshot({ status: "running", dialect: "modelslab", track_id: "order-1" }), fakeImages);
    expect(body).toMatchObject({ status: "processing", id: RUN_ID, eta: 4, fetch_result: `http://gateway.test/api/v3/fetch/${RUN_ID}`, output: [], track_id: "order-1" });
  });

  it("answers success with exactly the seed's fields: signed links, or base64 when asked", async () => {
    const links = await toModelsLab(env, snapshot({ dialect: "modelslab" }), fakeImages);
    expect(Object.keys(links).sort()).toEqual(["generationTime", "id", "meta", "output", "status"]);
    expect(links).toMatchObject({ status: "success", generationTime: 2.5, id: RUN_ID, meta: { H: 512, W: 512, seed: 42, steps: 20, n_samples: 2, guidance_scale: 7, prompt: "apple", negative_prompt: "red" } });
    expect((links.output as string[])[0]).toMatch(/^http:\/\/gateway\.test\/v1\/outputs\/.+\.png\?expires=\d+&sig=/);
    expect((await toModelsLab(env, snapshot({ dialect: "modelslab", dialect_data: { base64: true } }), fakeImages)).output).toEqual(["img0", "img1"]);
  });

  it("sends the webhook the same body with track_id, and a job that did not succeed as ModelsLab's failure payload", async () => {
    expect(await toModelsLabWebhook(env, snapshot({ dialect: "modelslab", track_id: "order-1" }), fakeImages)).toMatchObject({ status: "success", track_id: "order-1" });
    const failed = snapshot({ status: "failed", error: { code: "backend_failed", message: "out of memory" } });
    expect(await toModelsLabWebhook(env, failed, fakeImages)).toEqual({ status: "failed", id: RUN_ID, message: "out of memory", track_id: null });
    const canceled = snapshot({ status: "canceled", track_id: "order-2" });
    expect(await toModelsLabWebhook(env, canceled, fakeImages)).toMatchObject({ status: "failed", track_id: "order-2" });
  });

  it("shapes errors as {status: error, message}", () => {
    expect(modelsLabError(new EaselError(401, "unauthorized", "bad key"))).toEqual({ status: "error", message: "bad key" });
    expect(modelsLabError(new EaselError(422, "validation_failed", "samples: too big", [{ path: "samples", message: "too big" }]))).toEqual({ status: "error", message: "samples: too big", errors: [{ path: "samples", message: "too big" }] });
  });
});

describe("/api/v3 inside the Worker", () => {
  it("answers a wrong key, a bad field and bad JSON with a 4xx in its own shape", async () => {
    const anon = await call("/api/v3/img2img", { body: { ...seed, key: "wrong" } });
    expect(anon.status).toBe(401);
    expect(await anon.json()).toMatchObject({ status: "error", message: expect.any(String) });
    const bad = await call("/api/v3/text2img", { body: { key: "sk_acme_1", prompt: "x", samples: "9" } });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ status: "error", errors: [{ path: "samples" }] });
    const steps = await call("/api/v3/text2img", { body: { key: "sk_acme_1", prompt: "x", num_inference_steps: "500" } });
    expect(await steps.json()).toMatchObject({ status: "error", errors: [{ path: "num_inference_steps" }] });
    const malformed = await call("/api/v3/text2img", { body: "{" });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ status: "error" });
  });

  it("accepts a body whose yes/no fields are JSON booleans, and answers a bad one as a 422 naming it", async () => {
    const booleans = await call("/api/v6/images/text2img", { body: { key: "sk_acme_1", prompt: "x", width: 64, height: 64, base64: true, safety_checker: false, enhance_prompt: true } });
    expect(booleans.status).toBe(200);
    expect(await booleans.json()).toMatchObject({ status: expect.stringMatching(/^(processing|success)$/) });
    const bad = await call("/api/v3/text2img", { body: { key: "sk_acme_1", prompt: "x", base64: 1 } });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ status: "error", errors: [{ path: "base64" }] });
  });

  it("answers fetch of a job that is not the caller's with 404", async () => {
    const res = await call(`/api/v3/fetch/${RUN_ID}`, { body: { key: "sk_acme_1" } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ status: "error", message: "Request not found" });
  });
});

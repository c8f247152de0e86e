import { describe, expect, it } from "vitest";
import { ModelsLabRequestSchema, fromModelsLab, modelsLabData, modelsLabError, toModelsLab, toModelsLabWebhook } from "../../../src/dialects/modelslab/translate";
import { env } from "cloudflare:workers";
import { EaselError } from "../../../src/errors";
import { jobStub } from "../../../src/jobs/client";
import seed from "../../fixtures/seeds/modelslab-img2img.json";
import { RUN_ID, call, fakeImages, snapshot } from "./support";

const PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

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
      size_from_image: undefined,
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

  it("reads instant_response as its yes/no fields, \"true\" as well", () => {
    for (const yes of ["yes", true, "true"]) expect(ModelsLabRequestSchema.parse({ ...seed, instant_response: yes }).instant_response).toBe(true);
    for (const no of ["no", false, "false", null]) expect(ModelsLabRequestSchema.parse({ ...seed, instant_response: no }).instant_response).not.toBe(true);
    expect(ModelsLabRequestSchema.parse({ ...seed, base64: "true" }).base64).toBe(true);
  });

  it("gives an img2img without width and height the init image's own size, and one without a prompt the empty prompt", () => {
    const { width: _w, height: _h, prompt: _p, ...bare } = seed;
    expect(fromModelsLab("img2img", ModelsLabRequestSchema.parse(bare))).toMatchObject({ prompt: "", size_from_image: { rule: "own" }, width: undefined, height: undefined });
    expect(fromModelsLab("img2img", ModelsLabRequestSchema.parse({ ...bare, prompt: null }))).toMatchObject({ prompt: "" });
    expect(fromModelsLab("img2img", ModelsLabRequestSchema.parse({ ...bare, width: "768" })).size_from_image).toBeUndefined();
    // text2img keeps needing its prompt: intake refuses it missing.
    expect(fromModelsLab("txt2img", ModelsLabRequestSchema.parse(bare))).toMatchObject({ prompt: undefined, size_from_image: undefined });
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
    // ModelsLab's old spelling and its new one, and a tip naming the fetch link; no future_links (see translate.ts).
    expect(body).toMatchObject({ messege: "Request processing", message: "Request processing", tip: expect.stringContaining(`/api/v3/fetch/${RUN_ID}`) });
    expect(body).not.toHaveProperty("future_links");
  });

  it("answers success with exactly the seed's fields: signed links, or base64 when asked", async () => {
    const links = await toModelsLab(env, snapshot({ dialect: "modelslab" }), fakeImages);
    expect(Object.keys(links).sort()).toEqual(["generationTime", "id", "meta", "output", "proxy_links", "status"]);
    expect(links.proxy_links).toEqual(links.output);
    expect(links).toMatchObject({ status: "success", generationTime: 2.5, id: RUN_ID, meta: { H: 512, W: 512, seed: 42, steps: 20, n_samples: 2, guidance_scale: 7, prompt: "apple", negative_prompt: "red" } });
    expect((links.output as string[])[0]).toMatch(/^http:\/\/gateway\.test\/v1\/outputs\/.+\.png\?expires=\d+&sig=/);
    const base64 = await toModelsLab(env, snapshot({ dialect: "modelslab", dialect_data: { base64: true } }), fakeImages);
    expect(base64.output).toEqual(["img0", "img1"]);
    // The links beside the images, not the images twice.
    expect((base64.proxy_links as string[])[0]).toMatch(/^http:\/\/gateway\.test\/v1\/outputs\//);
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
    const booleans = await call("/api/v6/images/text2img", { body: { key: "sk_acme_1", prompt: "x", width: 64, height: 64, base64: true, safety_checker: false, enhance_prompt: true, instant_response: true } });
    expect(booleans.status).toBe(200);
    expect(await booleans.json()).toMatchObject({ status: "processing" });
    const bad = await call("/api/v3/text2img", { body: { key: "sk_acme_1", prompt: "x", base64: 1 } });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ status: "error", errors: [{ path: "base64" }] });
  });

  it("answers fetch of a job that is not the caller's with 404, the id in the path or as the body's request_id", async () => {
    const res = await call(`/api/v3/fetch/${RUN_ID}`, { body: { key: "sk_acme_1" } });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ status: "error", message: "Request not found" });
    for (const path of ["/api/v6/images/fetch", "/api/v3/fetch"]) {
      const byBody = await call(path, { body: { key: "sk_acme_1", request_id: RUN_ID } });
      expect(byBody.status, path).toBe(404);
      expect(await byBody.json()).toEqual({ status: "error", message: "Request not found" });
      const noId = await call(path, { body: { key: "sk_acme_1" } });
      expect(noId.status, path).toBe(422);
      expect(await noId.json()).toMatchObject({ status: "error", errors: [{ path: "request_id" }] });
      expect((await call(path, { body: { key: "wrong", request_id: RUN_ID } })).status, path).toBe(401);
    }
  });

  it("a realtime call waits a few seconds for the job: one that fails by then answers its error at once, as ModelsLab holds its answer", async () => {
    // txt2img here runs only on the two dead backends: the job fails in milliseconds.
    const res = await call("/api/v6/realtime/text2img", { body: { key: "sk_acme_1", prompt: "x", width: 64, height: 64 } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({ status: "error", id: expect.stringMatching(/^run_/), message: expect.any(String) });
  });

  it("with instant_response answers processing at once, and takes an img2img without a prompt", async () => {
    const res = await call("/api/v6/images/img2img", { body: { key: "sk_acme_1", model_id: "v1-5-pruned-emaonly", init_image: PNG_B64, instant_response: "true" } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; id: string; meta: { prompt: string } };
    expect(body).toMatchObject({ status: "processing", meta: { prompt: "" } });
    await jobStub(env, body.id).cancel("acme");
  });
});

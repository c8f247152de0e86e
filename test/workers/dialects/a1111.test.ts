import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ExtrasSingleImageSchema } from "../../../src/dialects/a1111/extras";
import { A1111RequestSchema, a1111Error, a1111Fields, a1111Parameters, fromA1111, requestedModel, toA1111Response, type A1111Request } from "../../../src/dialects/a1111/translate";
import { withTenantSettings } from "../../../src/dialects/a1111/settings";
import { EaselError } from "../../../src/errors";
import { jobStub } from "../../../src/jobs/client";
import txt2img from "../../fixtures/seeds/a1111-txt2img.json";
import { basic, call, snapshot, tinyPng } from "./support";

describe("A1111 request → canonical job", () => {
  it("maps seed 003's payload field by field", () => {
    expect(fromA1111("txt2img", txt2img, undefined)).toEqual({
      type: "txt2img",
      prompt: "apple",
      negative_prompt: "red",
      init_image: undefined,
      strength: undefined,
      steps: 20,
      guidance_scale: 7,
      width: 512,
      height: 512,
      samples: 1,
      seed: 985454925,
      sampler: "DPM++ 2M Karras",
      model: undefined,
      a1111_extra: {},
    });
  });

  it("takes batch_size × n_iter as samples (n_iter kept, for its A1111), -1 as a random seed, the init image, and passes the rest through", () => {
    const body: A1111Request = { prompt: "cat", batch_size: 2, n_iter: 2, seed: -1, denoising_strength: 0.4, init_images: ["AAA"], sampler_index: "Euler a", restore_faces: true, alwayson_scripts: { controlnet: { args: [] } } };
    const req = fromA1111("img2img", body, "v1-5");
    expect(req).toMatchObject({ samples: 4, seed: undefined, strength: 0.4, init_image: "AAA", sampler: "Euler a", model: "v1-5" });
    expect(req.a1111_extra).toEqual({ n_iter: 2, restore_faces: true, alwayson_scripts: { controlnet: { args: [] } } });
    expect(fromA1111("txt2img", body, undefined).init_image).toBeUndefined();
  });

  it("refuses a second init image on an img2img, naming the list under the dialect's envelope (it would be dropped); a txt2img ignores the field, as A1111's does", () => {
    const two: A1111Request = { prompt: "cat", batch_size: 2, init_images: ["AAA", "BBB"] };
    expect(() => fromA1111("img2img", two, undefined, "input.")).toThrow(expect.objectContaining({ status: 422, details: [{ path: "input.init_images", message: "one init image per request" }] }));
    expect(fromA1111("txt2img", two, undefined).init_image).toBeUndefined();
  });

  it("sends the tenant's own settings with each generation, as its A1111 would keep them; the request's own win", () => {
    const stored = { sd_model_checkpoint: "v1-5-pruned-emaonly.safetensors [6ce0161689]", CLIP_stop_at_last_layers: 2, eta_noise_seed_delta: 31337 };
    expect(withTenantSettings({ prompt: "x", override_settings: { eta_noise_seed_delta: 0 } }, stored).override_settings).toEqual({ CLIP_stop_at_last_layers: 2, eta_noise_seed_delta: 0 });
    // The checkpoint is the job's model, picked on its own (requestedModel).
    const plain: A1111Request = { prompt: "x" };
    expect(withTenantSettings(plain, { sd_model_checkpoint: "m" })).toEqual({ prompt: "x" });
    expect(withTenantSettings({ prompt: "x", override_settings: null }, { CLIP_stop_at_last_layers: 2 }).override_settings).toEqual({ CLIP_stop_at_last_layers: 2 });
  });

  it("picks the model as A1111 does: override_settings, then alwayson_scripts, then the tenant's option", () => {
    expect(requestedModel({ override_settings: { sd_model_checkpoint: "a" }, alwayson_scripts: { sd_model_checkpoint: "b" } }, "c")).toEqual({ model: "a", field: "override_settings.sd_model_checkpoint" });
    expect(requestedModel({ alwayson_scripts: { sd_model_checkpoint: "b" } }, "c", "task.content.")).toEqual({ model: "b", field: "task.content.alwayson_scripts.sd_model_checkpoint" });
    expect(requestedModel({ override_settings: null }, "c").model).toBe("c");
    expect(requestedModel({}, undefined).model).toBeUndefined();
  });

  it("sends alwayson_scripts on without sd_model_checkpoint, which names the model and is no script A1111 has", () => {
    const body: A1111Request = { prompt: "x", alwayson_scripts: { sd_model_checkpoint: "b", controlnet: { args: [{ module: "canny" }] } } };
    expect(fromA1111("txt2img", body, "b").a1111_extra).toEqual({ alwayson_scripts: { controlnet: { args: [{ module: "canny" }] } } });
    expect(fromA1111("txt2img", { prompt: "x", alwayson_scripts: { ADetailer: { args: [true] } } }, undefined).a1111_extra).toEqual({ alwayson_scripts: { ADetailer: { args: [true] } } });
  });

  it("reads numbers and booleans sent as strings as A1111's pydantic v1 does, and refuses what it would refuse", () => {
    const body = A1111RequestSchema.parse({ prompt: "x", steps: "20", cfg_scale: "7.5", seed: "-1", width: " 512 ", height: 512.9, batch_size: "2", n_iter: true, denoising_strength: "1e-1", include_init_images: "True", send_images: "no" });
    expect(body).toEqual({ prompt: "x", steps: 20, cfg_scale: 7.5, seed: -1, width: 512, height: 512, batch_size: 2, n_iter: 1, denoising_strength: 0.1, include_init_images: true, send_images: false });
    expect(fromA1111("txt2img", body, undefined)).toMatchObject({ steps: 20, guidance_scale: 7.5, seed: undefined, width: 512, samples: 2 });
    expect(A1111RequestSchema.parse({ steps: "1_000", cfg_scale: "+.5", include_init_images: 0 })).toMatchObject({ steps: 1000, cfg_scale: 0.5, include_init_images: false });
    for (const [field, value] of [["steps", "20.5"], ["steps", "0x10"], ["width", ""], ["cfg_scale", "7,5"], ["cfg_scale", "nan"], ["batch_size", "0"], ["include_init_images", "maybe"], ["send_images", 2]] as const) {
      const res = A1111RequestSchema.safeParse({ [field]: value });
      expect(res.success, `${field}: ${String(value)}`).toBe(false);
      expect(res.error?.issues[0]?.path).toEqual([field]);
    }
    expect(ExtrasSingleImageSchema.parse({ image: "AAA", upscaling_resize: "1.5", upscaling_resize_w: "640" })).toMatchObject({ upscaling_resize: 1.5, upscaling_resize_w: 640 });
  });

  it("names fields as the client sent them, under an envelope when there is one", () => {
    expect(a1111Fields()).toMatchObject({ guidance_scale: "cfg_scale", samples: "batch_size", init_image: "init_images.0", strength: "denoising_strength" });
    expect(a1111Fields("input.").width).toBe("input.width");
    // Too many images is n_iter's doing when there are several iterations.
    expect(a1111Fields("", { n_iter: 8 }).samples).toBe("n_iter");
  });
});

describe("canonical job → A1111 response", () => {
  it("answers images, the request as parameters, and info as A1111's JSON string", () => {
    const res = toA1111Response(snapshot(), ["i0", "i1"], txt2img);
    expect(Object.keys(res)).toEqual(["images", "parameters", "info"]);
    expect(res.parameters).toBe(txt2img);
    const info = JSON.parse(res.info) as Record<string, unknown>;
    expect(info).toMatchObject({ prompt: "apple", all_prompts: ["apple", "apple"], negative_prompt: "red", seed: 42, all_seeds: [42, 43], width: 512, height: 512, sampler_name: "DPM++ 2M Karras", cfg_scale: 7, steps: 20, batch_size: 2, index_of_first_image: 0, job_timestamp: "20260504102031" });
    expect(info.infotexts).toEqual([
      "apple\nNegative prompt: red\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42, Size: 512x512",
      "apple\nNegative prompt: red\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 43, Size: 512x512",
    ]);
  });

  it("gives in info the infotext each image carries and the model the backend reported; else the job's checkpoint", () => {
    const written = ["apple\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 42, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1", undefined];
    const info = JSON.parse(toA1111Response(snapshot(), [], {}, written).info) as Record<string, unknown>;
    expect(info).toMatchObject({ sd_model_name: "v1-5-pruned-emaonly", sd_model_hash: "6ce0161689" });
    expect(info.infotexts).toEqual([written[0], "apple\nNegative prompt: red\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 43, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly"]);
    // No infotext in the images (another kind of backend): the job's checkpoint, named as A1111 names it.
    const titled = JSON.parse(toA1111Response(snapshot({ spec: { model: "v1-5-pruned-emaonly.safetensors [6ce0161689]" } }), [], {}).info) as Record<string, unknown>;
    expect(titled).toMatchObject({ sd_model_name: "v1-5-pruned-emaonly", sd_model_hash: "6ce0161689" });
    expect(titled.infotexts).toEqual(expect.arrayContaining([expect.stringMatching(/Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly$/)]));
    expect(JSON.parse(toA1111Response(snapshot({ spec: { model: "chilloutmix-Ni" } }), [], {}).info)).toMatchObject({ sd_model_name: "chilloutmix-Ni", sd_model_hash: null });
  });

  it("echoes img2img without its images unless include_init_images, as A1111 does", () => {
    expect(a1111Parameters("img2img", { prompt: "x", init_images: ["AAA"] })).toEqual({ prompt: "x", init_images: null, mask: null });
    expect(a1111Parameters("img2img", { prompt: "x", init_images: ["AAA"], include_init_images: true })).toEqual({ prompt: "x", init_images: ["AAA"] });
    expect(a1111Parameters("txt2img", { prompt: "x" })).toEqual({ prompt: "x" });
  });

  it("gives errors FastAPI's detail for a 422, A1111's envelope otherwise", () => {
    expect(a1111Error(new EaselError(422, "validation_failed", "width: too big", [{ path: "width", message: "too big" }]))).toEqual({ detail: [{ loc: ["body", "width"], msg: "too big", type: "value_error" }] });
    expect(a1111Error(new EaselError(422, "invalid_request", "backend refused"))).toEqual({ detail: [{ loc: ["body"], msg: "backend refused", type: "value_error" }] });
    expect(a1111Error(new EaselError(502, "backend_failed", "CUDA out of memory"))).toEqual({ error: "backend_failed", detail: "", body: "", errors: "CUDA out of memory" });
  });
});

describe("/sdapi/v1 inside the Worker", () => {
  it("takes basic auth with the key as the password (any user) or Bearer, and answers 401 as A1111's --api-auth does", async () => {
    const wrong = await call("/sdapi/v1/samplers", { headers: basic("admin", "wrong") });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toBe("Basic");
    expect(await wrong.json()).toEqual({ error: "HTTPException", detail: "Incorrect username or password", body: "", errors: "401: Incorrect username or password" });
    expect(await (await call("/sdapi/v1/txt2img", { headers: { authorization: "Bearer sk_nobody" }, body: txt2img })).json()).toMatchObject({ detail: "Incorrect username or password" });
    // No credentials at all: FastAPI's HTTPBasic refuses before A1111's own check.
    const anon = await call("/sdapi/v1/samplers");
    expect(anon.status).toBe(401);
    expect(anon.headers.get("www-authenticate")).toBe("Basic");
    expect(await anon.json()).toEqual({ error: "HTTPException", detail: "Not authenticated", body: "", errors: "401: Not authenticated" });
    expect((await call("/sdapi/v1/samplers", { headers: basic("whoever", "sk_acme_1") })).status).toBe(200);
    const samplers = (await (await call("/sdapi/v1/samplers", { headers: { authorization: "Bearer sk_acme_1" } })).json()) as { name: string }[];
    expect(samplers.map((s) => s.name)).toContain("DPM++ 2M Karras");
  });

  it("answers errors of its routes in its own shapes, not the canonical one (the sub-app's onError)", async () => {
    const wide = await call("/sdapi/v1/txt2img", { headers: basic("a", "sk_acme_1"), body: { ...txt2img, width: 4096 } });
    expect(wide.status).toBe(422);
    expect(await wide.json()).toMatchObject({ detail: [{ loc: ["body", "width"] }] });
    const iterations = await call("/sdapi/v1/txt2img", { headers: basic("a", "sk_acme_1"), body: { ...txt2img, batch_size: 1, n_iter: 8 } });
    expect(iterations.status).toBe(422);
    expect(await iterations.json()).toMatchObject({ detail: [{ loc: ["body", "n_iter"] }] });
    const typed = await call("/sdapi/v1/txt2img", { headers: basic("a", "sk_acme_1"), body: { ...txt2img, steps: "twenty" } });
    expect(typed.status).toBe(422);
    expect(await typed.json()).toEqual({ detail: [{ loc: ["body", "steps"], msg: "value is not a valid integer", type: "value_error" }] });
    // A body that is no JSON is FastAPI's own 422, not A1111's HTTPException envelope.
    const malformed = await call("/sdapi/v1/txt2img", { headers: basic("a", "sk_acme_1"), body: "{" });
    expect(malformed.status).toBe(422);
    expect(await malformed.json()).toEqual({ detail: [{ loc: ["body"], msg: "the body is not a JSON object that can be read", type: "value_error" }] });
  });

  it("answers a route asked with a method it does not take as FastAPI does, 405 before auth", async () => {
    for (const [path, method, allow] of [["/sdapi/v1/txt2img", "GET", "POST"], ["/sdapi/v1/extra-batch-images", "GET", "POST"], ["/sdapi/v1/sd-models", "POST", "GET, HEAD"]] as const) {
      const res = await call(path, { method });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get("allow")).toBe(allow);
      expect(await res.json()).toEqual({ detail: "Method Not Allowed" });
    }
    expect((await call("/sdapi/v1/progress", { headers: basic("a", "sk_acme_1") })).status).toBe(200);
    expect((await call("/sdapi/v1/no-such-route", { headers: basic("a", "sk_acme_1") })).status).toBe(404);
  });

  // The backend that never answers holds the model list for its 5 s timeout.
  it("refuses an option naming a model no backend has with 422", { timeout: 15_000 }, async () => {
    const res = await call("/sdapi/v1/options", { headers: basic("a", "sk_globex_1"), body: { sd_model_checkpoint: "nope.safetensors" } });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ detail: [{ loc: ["body", "sd_model_checkpoint"] }] });
  });

  it("refuses options that would add up past what RunPod's getOptions answer can be kept as, naming the size, and keeps those set before", { timeout: 30_000 }, async () => {
    const headers = basic("a", "sk_capped_1");
    const chunk = "x".repeat(60 * 1024);
    for (let i = 0; i < 8; i++) expect((await call("/sdapi/v1/options", { headers, body: { [`custom_${i}`]: chunk } })).status, `option ${i}`).toBe(200);
    const refused = await call("/sdapi/v1/options", { headers, body: { custom_8: chunk, custom_9: chunk } });
    expect(refused.status).toBe(413);
    expect(JSON.stringify(await refused.json())).toMatch(/512 KiB/);
    const kept = (await (await call("/sdapi/v1/options", { method: "GET", headers })).json()) as Record<string, unknown>;
    expect(Object.keys(kept).filter((k) => k.startsWith("custom_"))).toHaveLength(8);
    // RunPod's getOptions answers them, whole.
    const answer = await call("/v2/any-endpoint/runsync", { headers: { authorization: "Bearer sk_capped_1" }, body: { input: { api_name: "getOptions" } } });
    expect(answer.status).toBe(200);
  });

  it("cancels the job of a client that hangs up", async () => {
    const before = new Set((await env.IMAGES.list({ prefix: "inputs/" })).objects.map((o) => o.key));
    const hangUp = new AbortController();
    // Only the backend that never answers takes img2img once the dead ones fail: the request waits.
    const pending = call("/sdapi/v1/img2img", { headers: basic("a", "sk_acme_1"), body: { prompt: "cat", init_images: [tinyPng()] }, signal: hangUp.signal }).catch(() => undefined);
    const runId = await until(async () => (await env.IMAGES.list({ prefix: "inputs/" })).objects.map((o) => o.key.split("/")[1]).find((id) => id && !before.has(`inputs/${id}/init`)));
    await until(async () => {
      const res = await jobStub(env, runId).get("acme");
      return res.ok && res.snapshot.job.status === "running" ? true : undefined;
    });
    hangUp.abort();
    await pending;
    const canceled = await until(async () => {
      const res = await jobStub(env, runId).get("acme");
      return res.ok && res.snapshot.job.status === "canceled" ? true : undefined;
    });
    expect(canceled).toBe(true);
  });
});

/** Asks until there is an answer, for at most 10 s. */
async function until<T>(fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("timed out");
}

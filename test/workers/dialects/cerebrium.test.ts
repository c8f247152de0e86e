import { describe, expect, it } from "vitest";
import { CerebriumRequestSchema, cerebriumAccepted, cerebriumError, cerebriumFields, fromCerebrium, toCerebrium } from "../../../src/dialects/cerebrium/translate";
import { EaselError } from "../../../src/errors";
import seed from "../../fixtures/seeds/cerebrium-predict.json";
import { RUN_ID, call, fakeImages, snapshot } from "./support";

describe("Cerebrium request → canonical job", () => {
  it("maps seed 004's body, file_url before image as main.py reads them, with the Item's defaults", () => {
    const body = CerebriumRequestSchema.parse(seed);
    expect(fromCerebrium(body)).toEqual({
      type: "img2img",
      prompt: "a photo of an astronaut riding a horse on mars.",
      negative_prompt: "",
      init_image: "https://your-url.com/image.png",
      steps: 50,
      guidance_scale: 7.5,
      samples: 1,
      seed: 120,
      size_from_image: { rule: "contain", width: 512, height: 512 },
      webhook: "https://your-url.com",
      webhook_events: ["job.succeeded", "job.failed", "job.canceled"],
    });
    expect(fromCerebrium({ prompt: "x", file_url: "https://img.example/cat.png" })).toMatchObject({ init_image: "https://img.example/cat.png", steps: 50, guidance_scale: 7.5, samples: 1 });
    expect(fromCerebrium({ prompt: "x", image: "AAA" })).toMatchObject({ init_image: "AAA" });
  });

  it("takes null for a parameter left unset (Python's None), as if it were left out: seed 0, the Item's default", () => {
    const body = CerebriumRequestSchema.parse({ prompt: "x", image: "AAA", seed: null, negative_prompt: null, num_inference_steps: null, webhook_endpoint: null, file_url: null, width: null });
    expect(fromCerebrium(body)).toEqual({
      type: "img2img",
      prompt: "x",
      negative_prompt: undefined,
      init_image: "AAA",
      steps: 50,
      guidance_scale: 7.5,
      samples: 1,
      seed: 0,
      size_from_image: { rule: "contain", width: 512, height: 512 },
      webhook: undefined,
      webhook_events: ["job.succeeded", "job.failed", "job.canceled"],
    });
    expect(fromCerebrium(CerebriumRequestSchema.parse({ prompt: "x", image: "AAA" })).seed).toBe(0);
  });

  it("reads numbers sent as strings as pydantic does, and width/height as the box the image is fitted in", () => {
    const body = CerebriumRequestSchema.parse({ prompt: "x", image: "AAA", num_inference_steps: "20", guidance_scale: "6.5", num_images_per_prompt: "2", seed: "7", width: "768", height: 640 });
    expect(fromCerebrium(body)).toMatchObject({ steps: 20, guidance_scale: 6.5, samples: 2, seed: 7, size_from_image: { rule: "contain", width: 768, height: 640 } });
    const bad = CerebriumRequestSchema.safeParse({ prompt: "x", seed: "seven", width: 0 });
    expect(bad.error?.issues.map((i) => i.path.join("."))).toEqual(["seed", "width"]);
  });

  it("names the image field it uses in errors", () => {
    expect(cerebriumFields({ prompt: "x", file_url: "https://img.example/a.png" }).init_image).toBe("file_url");
    expect(cerebriumFields({ prompt: "x", image: "AAA", file_url: "https://img.example/a.png" }).init_image).toBe("file_url");
    expect(cerebriumFields({ prompt: "x", image: "AAA", file_url: null }).init_image).toBe("image");
  });
});

describe("canonical job → Cerebrium body", () => {
  it("answers {run_id, message, result} on success, result null otherwise, {run_id, message} when a webhook follows", async () => {
    expect(await toCerebrium(snapshot({ dialect: "cerebrium" }), fakeImages)).toEqual({ run_id: RUN_ID, message: "Successfully generated image", result: ["img0", "img1"] });
    expect(await toCerebrium(snapshot({ status: "failed", error: { code: "timeout", message: "too slow" } }), fakeImages)).toEqual({ run_id: RUN_ID, message: "too slow", result: null });
    expect(Object.keys(cerebriumAccepted(snapshot({ status: "queued" }))).sort()).toEqual(["message", "run_id"]);
  });

  it("shapes errors as {run_id: null, message}", () => {
    expect(cerebriumError(new EaselError(401, "unauthorized", "no"))).toEqual({ run_id: null, message: "no" });
  });
});

describe("/cerebrium/predict inside the Worker", () => {
  it("takes the key raw or as Bearer, and answers errors in its shape with a 4xx", async () => {
    const anon = await call("/cerebrium/predict", { headers: { authorization: "nope" }, body: seed });
    expect(anon.status).toBe(401);
    expect(await anon.json()).toMatchObject({ run_id: null, message: expect.any(String) });
    for (const authorization of ["sk_acme_1", "Bearer sk_acme_1"]) {
      const bad = await call("/cerebrium/predict", { headers: { authorization }, body: { prompt: "x", image: "bm90IGFuIGltYWdl" } });
      expect(bad.status).toBe(422);
      expect(await bad.json()).toMatchObject({ run_id: null, errors: [{ path: "image" }] });
    }
    const many = await call("/cerebrium/predict", { headers: { authorization: "sk_acme_1" }, body: { prompt: "x", image: "AAAA", num_images_per_prompt: 9 } });
    expect(await many.json()).toMatchObject({ errors: [{ path: "num_images_per_prompt" }] });
  });
});

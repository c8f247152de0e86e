import { describe, expect, it } from "vitest";
import { ModelPredictionRequestSchema, PredictionRequestSchema, aspectSize, fromReplicate, webhookEvents, type ReplicateInput } from "../../../../src/dialects/replicate/translate";

const input = (raw: Record<string, unknown>): ReplicateInput => ModelPredictionRequestSchema.parse({ input: raw }).input;

describe("Replicate inputs → canonical job", () => {
  it("reads SDXL's inputs under the gateway's names; unknown inputs are ignored", () => {
    const req = fromReplicate(input({ prompt: "a fox", negative_prompt: "blur", prompt_strength: 0.6, num_outputs: 2, num_inference_steps: 25, guidance_scale: 6, seed: 9, width: 768, height: 512, scheduler: "K_EULER_ANCESTRAL", refine: "expert_ensemble_refiner", lora_scale: 0.6 }), undefined);
    expect(req).toEqual({ type: "txt2img", prompt: "a fox", negative_prompt: "blur", init_image: undefined, strength: 0.6, samples: 2, steps: 25, guidance_scale: 6, seed: 9, width: 768, height: 512, sampler: "Euler a" });
  });

  it("an image makes it img2img", () => {
    expect(fromReplicate(input({ prompt: "x", image: "https://example.com/a.png" }), "https://example.com/a.png")).toMatchObject({ type: "img2img", init_image: "https://example.com/a.png" });
  });

  it("a null or negative seed is a random one", () => {
    expect(fromReplicate(input({ prompt: "x", num_outputs: 3, seed: -1 }), undefined)).toMatchObject({ samples: 3, seed: undefined });
    expect(fromReplicate(input({ prompt: "x", seed: null }), undefined).seed).toBeUndefined();
  });

  it("refuses a bad value naming the input", () => {
    for (const [name, value] of [
      ["num_outputs", 5],
      ["prompt_strength", 1.5],
      ["scheduler", "NOT_A_SCHEDULER"],
      ["aspect_ratio", "7:5"],
      ["width", "wide"],
      // Replicate checks inputs against the model's schema: a number sent as a string is the wrong type.
      ["num_outputs", "2"],
      ["seed", "42"],
      ["guidance_scale", "7.5"],
      ["output_format", "gif"],
    ] as const) {
      const parsed = ModelPredictionRequestSchema.safeParse({ input: { prompt: "x", [name]: value } });
      expect(parsed.error?.issues[0]?.path).toEqual(["input", name]);
    }
  });

  it("aspect_ratio sizes the image near one megapixel in multiples of 8; explicit width and height win", () => {
    expect(aspectSize("1:1")).toEqual({ width: 1024, height: 1024 });
    expect(aspectSize("16:9")).toEqual({ width: 1368, height: 768 });
    expect(aspectSize("9:21")).toEqual({ width: 672, height: 1568 });
    expect(fromReplicate(input({ prompt: "x", aspect_ratio: "3:2", width: 512 }), undefined)).toMatchObject({ width: 512, height: 840 });
    expect(fromReplicate(input({ prompt: "x", aspect_ratio: "custom", width: 512, height: 256 }), undefined)).toMatchObject({ width: 512, height: 256 });
    expect(fromReplicate(input({ prompt: "x", aspect_ratio: "16:9", megapixels: "0.25" }), undefined)).toMatchObject({ width: 680, height: 384 });
    expect(fromReplicate(input({ prompt: "x", megapixels: "0.25" }), undefined)).toMatchObject({ width: 512, height: 512 });
  });

  it("workflow_json, as text or object, makes a workflow job; text that is not JSON is a 422 naming it", () => {
    const graph = { "9": { class_type: "SaveImage", inputs: {} } };
    expect(fromReplicate(input({ workflow_json: JSON.stringify(graph), prompt: "unread" }), undefined)).toEqual({ type: "workflow", workflow: graph });
    expect(fromReplicate(input({ workflow_json: graph }), undefined)).toEqual({ type: "workflow", workflow: graph });
    expect(() => fromReplicate(input({ workflow_json: "{nope" }), undefined)).toThrow(/input\.workflow_json/);
  });

  it("POST /v1/predictions needs a version; the model routes do not", () => {
    expect(PredictionRequestSchema.safeParse({ input: {} }).error?.issues[0]?.path).toEqual(["version"]);
    expect(ModelPredictionRequestSchema.parse({}).input).toEqual({});
  });
});

describe("webhook_events_filter → job events", () => {
  it("defaults to output and completed: every end", () => {
    expect(webhookEvents().sort()).toEqual(["job.canceled", "job.failed", "job.succeeded"]);
  });

  it("start is the job's start; output alone is its success; logs is its progress", () => {
    expect(webhookEvents(["start"])).toEqual(["job.started"]);
    expect(webhookEvents(["output"])).toEqual(["job.succeeded"]);
    expect(webhookEvents(["logs"])).toEqual(["job.progress"]);
    expect(webhookEvents(["start", "completed"]).sort()).toEqual(["job.canceled", "job.failed", "job.started", "job.succeeded"]);
  });
});

import { describe, expect, it } from "vitest";
import { a1111Call, a1111ImagesAt, a1111Outcome, a1111Payload, a1111Refusal, upscaleOutcome } from "../../../src/backends/a1111";
import { statusFailure } from "../../../src/backends/http";
import type { GenerationSpec } from "../../../src/jobs/spec";
import { answerOf, answerOfText, memoryStore, sent } from "./support";

const spec: GenerationSpec = {
  type: "img2img",
  prompt: "a cat wizard",
  negative_prompt: "blurry",
  strength: 0.6,
  steps: 20,
  guidance_scale: 7,
  width: 512,
  height: 384,
  samples: 2,
  seed: 42,
  sampler: "DPM++ 2M Karras",
  model: "v1-5-pruned-emaonly",
  a1111_extra: { alwayson_scripts: {}, override_settings: { CLIP_stop_at_last_layers: 2 } },
};
const b64 = (s: string) => btoa(s);
const outcome = async (json: unknown, samples: number) => a1111Outcome(await answerOf(json, a1111ImagesAt(false)), samples);

describe("A1111 adapter translation", () => {
  it("sends the job as A1111's own payload, the model through override_settings", async () => {
    const body = await sent(a1111Payload(spec, new Uint8Array([1, 2, 3])));
    expect(body).toMatchObject({
      prompt: "a cat wizard",
      negative_prompt: "blurry",
      seed: 42,
      steps: 20,
      cfg_scale: 7,
      width: 512,
      height: 384,
      batch_size: 2,
      n_iter: 1,
      sampler_name: "DPM++ 2M Karras",
      denoising_strength: 0.6,
      init_images: ["AQID"],
      alwayson_scripts: {},
      override_settings: { CLIP_stop_at_last_layers: 2, sd_model_checkpoint: "v1-5-pruned-emaonly" },
    });
    expect(a1111Payload({ ...spec, type: "txt2img" })).not.toHaveProperty("init_images");
  });

  it("makes the images in the batches the client asked for: batch_size at once, n_iter times (a smaller batch fits the GPU's memory)", () => {
    expect(a1111Payload({ ...spec, samples: 4, a1111_extra: { n_iter: 4 } })).toMatchObject({ batch_size: 1, n_iter: 4 });
    expect(a1111Payload({ ...spec, samples: 4, a1111_extra: { n_iter: 2 } })).toMatchObject({ batch_size: 2, n_iter: 2 });
    // A count that does not divide the job's images (not one A1111 sent) makes them in one batch.
    expect(a1111Payload({ ...spec, samples: 3, a1111_extra: { n_iter: 2 } })).toMatchObject({ batch_size: 3, n_iter: 1 });
  });

  it("drops the grid A1111 puts before a batch", async () => {
    const store = memoryStore();
    const out = a1111Outcome(await answerOf({ images: [b64("grid"), b64("one"), b64("two")] }, a1111ImagesAt(false), store), 2);
    expect(out.kind).toBe("done");
    if (out.kind === "done") expect(out.images.map((i) => store.text(i))).toEqual(["one", "two"]);
  });

  it("takes the batch where A1111's info says it starts, and not an extension's images after it (ControlNet's detected map)", async () => {
    const texts = async (images: string[], info: object, samples: number) => {
      const store = memoryStore();
      const out = a1111Outcome(await answerOf({ images: images.map(b64), info: JSON.stringify(info) }, a1111ImagesAt(false), store), samples);
      return out.kind === "done" ? out.images.map((i) => store.text(i)) : out;
    };
    expect(await texts(["one", "two", "map"], { index_of_first_image: 0, all_seeds: [1, 2] }, 2)).toEqual(["one", "two"]);
    expect(await texts(["one", "map"], { index_of_first_image: 0 }, 1)).toEqual(["one"]);
    expect(await texts(["grid", "one", "two", "map"], { index_of_first_image: 1 }, 2)).toEqual(["one", "two"]);
  });

  it("decodes images piece by piece as the answer arrives: data URIs, url-safe base64, escapes, other long strings dropped", async () => {
    const store = memoryStore();
    const echoed = "x".repeat(100_000);
    const json = { parameters: { init_images: [echoed], prompt: 'say "hi"' }, images: [`data:image/png;base64,${b64("first image")}`, b64("\xfb\xff~~").replace(/\+/g, "-").replace(/\//g, "_"), "YWJj\n"], info: "{\"seed\": 1}" };
    // Escapes too, as a JSON encoder may write them (\u004a is "J"), split across pieces.
    const read = await answerOfText(JSON.stringify(json).replace("YWJj\\n", "YW\\u004aj\\n"), a1111ImagesAt(false), store, 5);
    expect(read.images.map((i) => i && store.text(i))).toEqual(["first image", new TextDecoder().decode(new Uint8Array([0xfb, 0xff, 0x7e, 0x7e])), "abc"]);
    // The rest parses as it was, the images left as "" and a string too long to matter too.
    expect(read.json).toEqual({ parameters: { init_images: [""], prompt: 'say "hi"' }, images: ["", "", ""], info: '{"seed": 1}' });
  });

  it("turns failure in disguise into a failed attempt, never a success", async () => {
    expect(await outcome({ error: "OutOfMemoryError", detail: "", body: "", errors: "CUDA out of memory. Tried to allocate 2.00 GiB" }, 1)).toMatchObject({
      kind: "failed",
      failure: { code: "out_of_memory", retryable: true },
    });
    expect(await outcome({ images: [], parameters: {}, info: "{}" }, 1)).toMatchObject({ kind: "failed", failure: { code: "backend_failed" } });
    // An interrupted batch returns the images made so far.
    expect(await outcome({ images: [b64("one")] }, 2)).toMatchObject({ kind: "failed", failure: { code: "interrupted" } });
    expect(await outcome({ images: ["%%%not base64"] }, 1)).toMatchObject({ kind: "failed" });
    expect(await outcome(undefined, 1)).toMatchObject({ kind: "failed" });
  });

  it("blames the request only for a 400 or 422; other answers fail over to another backend", () => {
    expect(statusFailure(422, "{}")).toMatchObject({ kind: "failed", failure: { code: "invalid_request", retryable: false } });
    expect(statusFailure(400, "{}")).toMatchObject({ kind: "failed", failure: { retryable: false } });
    for (const status of [401, 403, 404, 429, 500, 502, 503]) expect(statusFailure(status, "")).toMatchObject({ kind: "failed", failure: { retryable: true } });
    // Refused for now, nothing queued: the job goes again later, the backend not blamed.
    expect(statusFailure(429, "")).toMatchObject({ kind: "failed", failure: { code: "backend_busy" } });
    // Too large for this backend (RunPod's /run takes 10 MB): another may take it, and it says nothing of this one's health.
    expect(statusFailure(413, "")).toMatchObject({ kind: "failed", failure: { code: "request_too_large", retryable: true } });
  });
});

describe("a shared A1111", () => {
  it("forces the fields that would outlast the request on the backend", () => {
    const hostile = { ...spec, a1111_extra: { override_settings: { sd_vae: "evil.vae" }, override_settings_restore_afterwards: false, save_images: true, do_not_save_samples: false, do_not_save_grid: false } };
    expect(a1111Payload(hostile)).toMatchObject({ override_settings_restore_afterwards: true, save_images: false, do_not_save_samples: true, do_not_save_grid: true });
  });

  it("always asks for the images, which the job keeps, whatever the client's send_images says", () => {
    expect(a1111Payload({ ...spec, a1111_extra: { send_images: false } })).toMatchObject({ send_images: true });
  });

  it("tries another backend for what this one lacks (an upscaler, an always-on script), without counting it as failing", async () => {
    const upscaler = await outcome({ error: "AssertionError", detail: "", body: "", errors: "could not find upscaler named 4x-UltraSharp" }, 1);
    expect(upscaler).toMatchObject({ kind: "failed", failure: { code: "invalid_request", retryable: true, message: "the backend has no upscaler named 4x-UltraSharp" } });
    const script = a1111Refusal(422, await answerOf({ error: "HTTPException", detail: "always on script controlnet not found", body: "", errors: "" }, a1111ImagesAt(false)));
    expect(script).toMatchObject({ kind: "failed", failure: { code: "invalid_request", retryable: true, message: "the backend has no script named controlnet" } });
    // Any other assertion is still the request's own fault.
    expect(await outcome({ error: "AssertionError", detail: "", body: "", errors: "width must be a multiple of 8" }, 1)).toMatchObject({ kind: "failed", failure: { code: "invalid_request", retryable: false } });
  });

  it("blames the request, not the backend, for what the request caused", async () => {
    // A1111's envelope for an exception raised on the request's own fields (bad script args).
    const badArgs = await outcome({ error: "IndexError", detail: "", body: "", errors: "list index out of range" }, 1);
    expect(badArgs).toMatchObject({ kind: "failed", failure: { code: "invalid_request", retryable: false } });
    // api.py's answer to an image Pillow cannot open: no other A1111 opens it either.
    const badImage = await outcome({ error: "HTTPException", detail: "Invalid encoded image", body: "", errors: "" }, 1);
    expect(badImage).toMatchObject({ kind: "failed", failure: { code: "invalid_request", retryable: false } });
    expect(await outcome({ images: [], parameters: {}, info: "{}" }, 1)).toMatchObject({ kind: "failed", failure: { code: "backend_failed", retryable: true } });
    // The backend's own text never reaches the tenant-visible message.
    const crash = await outcome({ error: "RuntimeError", detail: "", body: "", errors: "see http://admin:hunter2@10.0.0.5/log" }, 1);
    expect(crash).toMatchObject({ kind: "failed", failure: { code: "backend_failed", message: "the backend reported an error", retryable: true } });
    expect(JSON.stringify(crash.kind === "failed" && crash.failure.message)).not.toContain("hunter2");
  });

  it("sends an upscale to extra-single-image: by scale, or to the exact size; other extras fields pass through", async () => {
    const upscale: GenerationSpec = { ...spec, type: "upscale", width: 1024, height: 768, samples: 1, upscale: { scale: 2, upscaler: "R-ESRGAN 4x+" }, a1111_extra: { gfpgan_visibility: 0.5 } };
    const byScale = a1111Call(upscale, new Uint8Array([1, 2, 3]), undefined);
    expect(byScale.api).toBe("extra-single-image");
    expect(await sent(byScale.body)).toEqual({ gfpgan_visibility: 0.5, image: "AQID", resize_mode: 0, upscaling_resize: 2, upscaling_resize_w: 1024, upscaling_resize_h: 768, upscaling_crop: true, upscaler_1: "R-ESRGAN 4x+" });
    const toSize = a1111Call({ ...upscale, upscale: {} }, new Uint8Array([1]), undefined).body;
    expect(toSize).toMatchObject({ resize_mode: 1, upscaling_resize_w: 1024, upscaling_resize_h: 768, upscaler_1: "Lanczos" });
    expect(a1111Call(spec, undefined, undefined).api).toBe("img2img");
  });

  it("reads extra-single-image's {html_info, image}; an error envelope or no image is a failure", async () => {
    const upscaled = async (json: unknown) => upscaleOutcome(await answerOf(json, a1111ImagesAt(true), store));
    const store = memoryStore();
    const done = await upscaled({ html_info: "<p></p>", image: b64("png") });
    expect(done.kind === "done" && done.images.map((i) => store.text(i))).toEqual(["png"]);
    expect(await upscaled({ error: "OutOfMemoryError", detail: "", body: "", errors: "CUDA out of memory" })).toMatchObject({ kind: "failed", failure: { code: "out_of_memory", retryable: true } });
    expect(await upscaled({ html_info: "" })).toMatchObject({ kind: "failed", failure: { retryable: true } });
  });

  it("fails at once, never over, a name A1111 does not know (its 404 envelope), while a bare 404 (a wrong URL) is the backend's", async () => {
    const unknown = await answerOf({ error: "HTTPException", detail: "Sampler not found", body: "", errors: "404: Sampler not found" }, a1111ImagesAt(false));
    expect(a1111Refusal(404, unknown)).toMatchObject({ kind: "failed", failure: { code: "invalid_request", retryable: false, message: expect.stringContaining("Sampler not found") } });
    const wrongUrl = await answerOf({ detail: "Not Found" }, a1111ImagesAt(false));
    expect(a1111Refusal(404, wrongUrl)).toMatchObject({ kind: "failed", failure: { code: "backend_failed", retryable: true } });
    // A 5xx envelope is read as the answer it is (out of memory told apart).
    expect(a1111Refusal(500, await answerOf({ error: "OutOfMemoryError", detail: "", body: "", errors: "CUDA out of memory" }, a1111ImagesAt(false)))).toBeUndefined();
  });
});

import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { jobStub } from "../../../src/jobs/client";
import { submitJob } from "../../../src/jobs/intake";
import { bytesToBase64 } from "../../../src/lib/base64";
import { signedOutputUrl } from "../../../src/storage/links";

const PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const created: string[] = [];
afterEach(async () => {
  for (const id of created.splice(0)) await jobStub(env, id).cancel("acme");
});

describe("intake of the gateway's own output link as an image", () => {
  it("reads it from R2, not over the network (a Worker's fetch of its own hostname does not reach it)", async () => {
    const png = Uint8Array.from(atob(PNG_B64), (c) => c.charCodeAt(0));
    await env.IMAGES.put("outputs/run_chained/image_0.png", png);
    const link = await signedOutputUrl("http://gateway.test", "test-signing-secret", "outputs/run_chained/image_0.png");
    const { snapshot } = await submitJob(env, { type: "img2img", prompt: "refine", init_image: link, backend: "hang", model: "v1-5-pruned-emaonly" }, { tenant: "acme", dialect: "replicate", publicBaseUrl: "http://gateway.test" });
    created.push(snapshot.job.id);
    const stored = await env.IMAGES.get(snapshot.input.spec.init_image_key ?? "");
    expect(new Uint8Array((await stored?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(png);
  });
});

describe("intake's unknown-model rule, for the dialects that ask for it", () => {
  const a1111 = { tenant: "acme", dialect: "a1111", publicBaseUrl: "http://gateway.test", fields: { model: "override_settings.sd_model_checkpoint" }, knownModelsOnly: true } as const;

  it("refuses a model no backend lists with a 422 naming the dialect's field; a pin that overrides the lists runs it", async () => {
    const refused = submitJob(env, { type: "img2img", prompt: "x", init_image: PNG_B64, model: "no-such-model" }, a1111);
    await expect(refused).rejects.toMatchObject({ status: 422, details: [{ path: "override_settings.sd_model_checkpoint", message: 'unknown model "no-such-model"' }] });
    const { snapshot, created: made } = await submitJob(env, { type: "img2img", prompt: "x", init_image: PNG_B64, model: "no-such-model", backend: "hang", pin_overrides_models: true }, a1111);
    created.push(snapshot.job.id);
    expect(made).toBe(true);
  });
});

describe("intake's img2img size from the init image (ModelsLab, Cerebrium)", () => {
  /** A whole PNG whose IHDR says this size: intake reads an image's size from its header, and walks its chunks. */
  const pngHeader = (width: number, height: number) => {
    const bytes = Uint8Array.from(atob(PNG_B64), (c) => c.charCodeAt(0));
    const view = new DataView(bytes.buffer);
    view.setUint32(16, width);
    view.setUint32(20, height);
    return bytes;
  };
  const opts = { tenant: "acme", dialect: "modelslab", publicBaseUrl: "http://gateway.test" } as const;
  const sizeOf = async (req: Omit<Parameters<typeof submitJob>[1], "type">) => {
    const { snapshot } = await submitJob(env, { prompt: "x", backend: "hang", model: "v1-5-pruned-emaonly", ...req, type: "img2img" }, opts);
    created.push(snapshot.job.id);
    return { width: snapshot.input.spec.width, height: snapshot.input.spec.height };
  };

  it("takes the image's own size, or the image fitted in a box; without a rule, width and height as given", async () => {
    const image = pngHeader(768, 512);
    expect(await sizeOf({ init_image: image, size_from_image: { rule: "own" } })).toEqual({ width: 768, height: 512 });
    expect(await sizeOf({ init_image: image, size_from_image: { rule: "contain", width: 512, height: 512 } })).toEqual({ width: 512, height: 336 });
    expect(await sizeOf({ init_image: image })).toEqual({ width: 512, height: 512 });
  });
});

describe("intake's routing by the request's size", () => {
  /** A valid 1x1 PNG carrying `bytes` more in a text chunk: its base64 makes a request that large. */
  const largePng = (bytes: number) => {
    const small = Uint8Array.from(atob(PNG_B64), (c) => c.charCodeAt(0));
    const chunk = new Uint8Array(12 + bytes);
    new DataView(chunk.buffer).setUint32(0, bytes);
    chunk.set([116, 69, 88, 116], 4);
    const out = new Uint8Array(small.length + chunk.length);
    out.set(small.subarray(0, 33));
    out.set(chunk, 33);
    out.set(small.subarray(33), 33 + chunk.length);
    return out;
  };
  // A RunPod endpoint takes 10 MB in one /run; an A1111 has no such limit.
  const withRunPod = { ...env, BACKENDS: JSON.stringify([{ name: "rp", kind: "runpod", url: "http://127.0.0.1:9/v2/ep" }, { name: "local", kind: "a1111", url: "http://127.0.0.1:9" }]) };
  const v1 = { tenant: "acme", dialect: "v1", publicBaseUrl: "http://gateway.test" } as const;

  it("runs a job whose images make a request over RunPod's 10 MB only on the backends that take it", async () => {
    const { snapshot } = await submitJob(withRunPod, { type: "img2img", prompt: "x", init_image: largePng(8_000_000) }, v1);
    created.push(snapshot.job.id);
    expect(snapshot.input.backends).toEqual(["local"]);
    const small = await submitJob(withRunPod, { type: "img2img", prompt: "x", init_image: PNG_B64 }, v1);
    created.push(small.snapshot.job.id);
    expect(small.snapshot.input.backends).toBeUndefined();
  });

  it("refuses it with a 422 naming its largest part when only RunPod could run it: the image, or a pass-through field", async () => {
    const runpod = { ...v1, fields: { init_image: "input.init_images.0", pass_through: "input." } };
    const refused = submitJob(withRunPod, { type: "img2img", prompt: "x", init_image: largePng(8_000_000), backend: "rp" }, runpod);
    await expect(refused).rejects.toMatchObject({ status: 422, details: [{ path: "input.init_images.0" }] });
    // A small init image, and a ControlNet image in the pass-through fields that makes the request too large
    // (a real image: intake reads the images there as it reads the init image).
    const controlnet = { alwayson_scripts: { controlnet: { args: [{ image: bytesToBase64(largePng(7_900_000)) }] } } };
    const passThrough = submitJob(withRunPod, { type: "img2img", prompt: "x", init_image: PNG_B64, backend: "rp", a1111_extra: controlnet }, runpod);
    await expect(passThrough).rejects.toMatchObject({ status: 422, details: [{ path: "input.alwayson_scripts" }] });
  });

  it("takes a request just under RunPod's 10 MB there", async () => {
    // 7,490,000 bytes are 9,986,668 of base64: the request is under 10 MB with its parameters.
    const { snapshot } = await submitJob(withRunPod, { type: "img2img", prompt: "x", init_image: largePng(7_490_000), backend: "rp" }, v1);
    created.push(snapshot.job.id);
    expect(snapshot.input.backends).toBeUndefined();
  });
});

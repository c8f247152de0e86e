import { describe, expect, it } from "vitest";
import { backendModelName, fittingBackends, modelKey } from "../../../src/backends/models";
import type { BackendConfig } from "../../../src/config";

const backend = (over: Partial<BackendConfig>): BackendConfig => ({
  name: "b",
  kind: "a1111",
  url: "http://b",
  types: ["img2img", "txt2img"],
  max_concurrency: 1,
  timeout_s: 60,
  circuit_cooldown_s: 30,
  ...over,
});

describe("model matching", () => {
  it("matches by title or model_name, with or without extension and hash", () => {
    const title = "v1-5-pruned-emaonly.safetensors [6ce0161689]";
    for (const name of ["v1-5-pruned-emaonly", "v1-5-pruned-emaonly.safetensors", "v1-5-pruned-emaonly.ckpt", title]) {
      expect(modelKey(name)).toBe(modelKey(title));
    }
    expect(modelKey("chilloutmix-Ni")).not.toBe(modelKey(title));
  });

  it("routes only to backends that serve the type and the model, and a pin to that backend alone", () => {
    const all = [
      backend({ name: "any" }),
      backend({ name: "sd15", models: ["v1-5-pruned-emaonly.safetensors [6ce0161689]"] }),
      backend({ name: "cere", kind: "cerebrium", types: ["img2img"] }),
    ];
    expect(fittingBackends(all, { type: "txt2img", model: "v1-5-pruned-emaonly" }).map((b) => b.name)).toEqual(["any", "sd15"]);
    expect(fittingBackends(all, { type: "img2img", model: "chilloutmix-Ni" }).map((b) => b.name)).toEqual(["any", "cere"]);
    expect(fittingBackends(all, { type: "txt2img", backend: "cere" })).toEqual([]);
    expect(fittingBackends(all, { type: "img2img", backend: "cere" }).map((b) => b.name)).toEqual(["cere"]);
  });

  it("sends workflows only to ComfyUI backends, and canonical jobs to them only with a sampler ComfyUI has", () => {
    const all = [backend({ name: "a1111", types: ["img2img", "txt2img", "upscale"] }), backend({ name: "comfy", kind: "comfyui", types: ["img2img", "txt2img", "upscale", "workflow"] })];
    expect(fittingBackends(all, { type: "workflow" }).map((b) => b.name)).toEqual(["comfy"]);
    expect(fittingBackends(all, { type: "txt2img", sampler: "DPM++ 2M Karras" }).map((b) => b.name)).toEqual(["a1111", "comfy"]);
    expect(fittingBackends(all, { type: "txt2img" }).map((b) => b.name)).toEqual(["a1111", "comfy"]);
    expect(fittingBackends(all, { type: "txt2img", sampler: "Restart" }).map((b) => b.name)).toEqual(["a1111"]);
    expect(fittingBackends(all, { type: "txt2img", sampler: "Restart", backend: "comfy" })).toEqual([]);
  });

  it("asks a backend for a model by the name the backend lists it under", () => {
    const listed = backend({ models: ["v1-5-pruned-emaonly.safetensors [6ce0161689]"] });
    expect(backendModelName(listed, "v1-5-pruned-emaonly")).toBe("v1-5-pruned-emaonly.safetensors [6ce0161689]");
    expect(backendModelName(backend({}), "v1-5-pruned-emaonly")).toBe("v1-5-pruned-emaonly");
    expect(backendModelName(listed, undefined)).toBeUndefined();
  });
});

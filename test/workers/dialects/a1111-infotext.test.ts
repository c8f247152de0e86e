import { describe, expect, it } from "vitest";
import { modelOf, parseInfotext, pngInfo } from "../../../src/dialects/a1111/infotext";

describe("A1111 infotext", () => {
  it("reads the prompt, the negative prompt and the parameters line as A1111 does", () => {
    const text = 'a cat wizard,\nin a hat\nNegative prompt: blurry\nlow quality\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42, Size: 512x768, Model hash: 6ce0161689, Lora hashes: "add_detail: 7c6bad76eb54, more: 1", Version: v1.10.1';
    expect(parseInfotext(text)).toMatchObject({
      Prompt: "a cat wizard,\nin a hat",
      "Negative prompt": "blurry\nlow quality",
      Steps: "20",
      Sampler: "DPM++ 2M Karras",
      "CFG scale": "7",
      Seed: "42",
      "Size-1": "512",
      "Size-2": "768",
      "Model hash": "6ce0161689",
      "Lora hashes": "add_detail: 7c6bad76eb54, more: 1",
      Version: "v1.10.1",
      "Clip skip": "1",
      "Schedule type": "Automatic",
    });
  });

  it("takes a last line with fewer than three parameters as part of the prompt", () => {
    expect(parseInfotext("just a prompt\nwith: one colon")).toMatchObject({ Prompt: "just a prompt\nwith: one colon", "Negative prompt": "" });
  });

  it("names the model as the infotext does, else as the checkpoint's title does, never a hash with another model's name", () => {
    const text = "cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x64, Model hash: 7234b76e42, Model: chilloutmix-Ni, Version: v1.10.1";
    expect(modelOf(text, "v1-5-pruned-emaonly.safetensors [6ce0161689]")).toEqual({ name: "chilloutmix-Ni", hash: "7234b76e42" });
    expect(modelOf("cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Model: mine", "v1-5-pruned-emaonly.safetensors [6ce0161689]")).toEqual({ name: "mine", hash: null });
    expect(modelOf(undefined, "sd/v1-5-pruned-emaonly.safetensors [6ce0161689]")).toEqual({ name: "v1-5-pruned-emaonly", hash: "6ce0161689" });
    expect(modelOf("just a prompt", "sdxl.ckpt")).toEqual({ name: "sdxl", hash: null });
    expect(modelOf(undefined, null)).toEqual({ name: null, hash: null });
  });

  it("answers png-info for what is not base64 with undefined, and empty info for bytes without a parameters chunk", async () => {
    expect(await pngInfo("%%%")).toBeUndefined();
    expect(await pngInfo(btoa("not a png"))).toMatchObject({ info: "", items: {}, parameters: { Prompt: "" } });
  });
});

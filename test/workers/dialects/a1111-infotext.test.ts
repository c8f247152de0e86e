import { describe, expect, it } from "vitest";
import { parseInfotext, pngInfo } from "../../../src/dialects/a1111/infotext";

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

  it("answers png-info for what is not base64 with undefined, and empty info for bytes without a parameters chunk", async () => {
    expect(await pngInfo("%%%")).toBeUndefined();
    expect(await pngInfo(btoa("not a png"))).toMatchObject({ info: "", items: {}, parameters: { Prompt: "" } });
  });
});

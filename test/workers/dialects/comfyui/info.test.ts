import { describe, expect, it } from "vitest";
import { withChoices, withoutJobFiles } from "../../../../src/dialects/comfyui/info";

describe("the node definitions shown to tenants", () => {
  const upload = `run_${"b".repeat(39)}-1-private.png`;
  const defs = {
    LoadImage: { input: { required: { image: [["example.png", upload, `sub/${upload}`], { image_upload: true }] } }, output: ["IMAGE", "MASK"] },
    LoadImageMask: { input: { required: { image: [[upload, "mask.png"], {}], channel: [["alpha", "red"]] } } },
    LoadImageOutput: { input: { required: { image: ["COMBO", { options: ["AlphaPrivate_00001_.png [output]"] }] } } },
    KSampler: { input: { required: { seed: ["INT", { min: 0 }] } } },
  };

  it("list no other job's upload among the loaders' files and no output at all; the server's own files and everything else stay", () => {
    const shown = withoutJobFiles(defs) as unknown as typeof defs;
    expect(shown.LoadImage.input.required.image).toEqual([["example.png"], { image_upload: true }]);
    expect(shown.LoadImageMask.input.required).toEqual({ image: [["mask.png"], {}], channel: [["alpha", "red"]] });
    expect(shown.LoadImageOutput.input.required.image).toEqual(["COMBO", { options: [] }]);
    expect(shown.KSampler).toEqual(defs.KSampler);
    expect(shown.LoadImage.output).toEqual(["IMAGE", "MASK"]);
  });

  it("offer every ComfyUI backend's checkpoints as ckpt_name's choices, in the server's own form (a list, or V3's COMBO)", () => {
    const v1 = { input: { required: { ckpt_name: [["a.safetensors"], { tooltip: "t" }] } } };
    const v3 = { input: { required: { ckpt_name: ["COMBO", { multiselect: false, options: ["a.safetensors"], tooltip: "t" }] } } };
    const choices = ["a.safetensors", "b.safetensors"];
    expect(withChoices(v1, choices)).toEqual({ input: { required: { ckpt_name: [choices, { tooltip: "t" }] } } });
    expect(withChoices(v3, choices)).toEqual({ input: { required: { ckpt_name: ["COMBO", { multiselect: false, options: choices, tooltip: "t" }] } } });
  });
});

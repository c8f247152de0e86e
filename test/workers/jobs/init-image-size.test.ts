import { describe, expect, it } from "vitest";
import { contain, sizeFromImage, withinLimits } from "../../../src/jobs/init-image-size";

describe("an img2img's size from its init image", () => {
  it("fits the image in a box as PIL's ImageOps.contain does, halves rounded as Python rounds them", () => {
    expect(contain({ width: 768, height: 512 }, { width: 512, height: 512 })).toEqual({ width: 512, height: 341 });
    expect(contain({ width: 512, height: 768 }, { width: 512, height: 512 })).toEqual({ width: 341, height: 512 });
    // Smaller images grow to the box, as contain scales either way.
    expect(contain({ width: 32, height: 16 }, { width: 512, height: 512 })).toEqual({ width: 512, height: 256 });
    expect(contain({ width: 100, height: 100 }, { width: 640, height: 384 })).toEqual({ width: 384, height: 384 });
    // 5/8 * 4 = 2.5: Python's round() gives 2, Math.round 3.
    expect(contain({ width: 8, height: 5 }, { width: 4, height: 4 })).toEqual({ width: 4, height: 2 });
  });

  it("Cerebrium: the contained size, each side down to a multiple of 8 as diffusers' image processor takes it", () => {
    expect(sizeFromImage({ width: 768, height: 512 }, { rule: "contain", width: 512, height: 512 })).toEqual({ width: 512, height: 336 });
    expect(sizeFromImage({ width: 768, height: 512 }, { rule: "contain", width: 768, height: 768 })).toEqual({ width: 768, height: 512 });
    expect(sizeFromImage({ width: 64, height: 48 }, { rule: "contain", width: 512, height: 512 })).toEqual({ width: 512, height: 384 });
  });

  it("ModelsLab: the image's own size on the 8 px grid, scaled into 64–2048 with its aspect kept", () => {
    expect(sizeFromImage({ width: 768, height: 512 }, { rule: "own" })).toEqual({ width: 768, height: 512 });
    expect(sizeFromImage({ width: 1001, height: 667 }, { rule: "own" })).toEqual({ width: 1000, height: 664 });
    expect(sizeFromImage({ width: 3000, height: 1000 }, { rule: "own" })).toEqual({ width: 2048, height: 680 });
    expect(sizeFromImage({ width: 4096, height: 4096 }, { rule: "own" })).toEqual({ width: 2048, height: 2048 });
    expect(sizeFromImage({ width: 32, height: 32 }, { rule: "own" })).toEqual({ width: 64, height: 64 });
    expect(sizeFromImage({ width: 50, height: 300 }, { rule: "own" })).toEqual({ width: 64, height: 384 });
    // Too thin for both limits: the short side at 64, the long one held at 2048.
    expect(withinLimits({ width: 10, height: 5000 }, "nearest")).toEqual({ width: 64, height: 2048 });
  });
});

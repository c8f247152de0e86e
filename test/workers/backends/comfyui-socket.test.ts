import { describe, expect, it } from "vitest";
import { etaFrom, previewOf, promptProgress } from "../../../src/backends/comfyui-socket";

describe("ComfyUI progress messages", () => {
  it("counts each sampler as one equal part of the job", () => {
    const samplers = ["5", "8", "11"];
    expect(promptProgress({ value: 10, max: 20, node: "5", prompt_id: "p" }, samplers)).toMatchObject({ fraction: 1 / 6, step: 10, steps: 20, job_no: 0, job_count: 3, node: "5" });
    expect(promptProgress({ value: 20, max: 20, node: "11", prompt_id: "p" }, samplers)?.fraction).toBe(1);
    expect(promptProgress({ value: 5, max: 20, node: "8" }, samplers)?.fraction).toBeCloseTo(1.25 / 3);
  });

  it("shows a node that is no sampler by its own figures, and ignores what is not progress", () => {
    expect(promptProgress({ value: 1, max: 4, node: "42" }, ["5"])).toMatchObject({ fraction: 0.25, node: "42" });
    expect(promptProgress({ value: 1, max: 0, node: "5" }, ["5"])).toBeUndefined();
    expect(promptProgress({ node: "5" }, ["5"])).toBeUndefined();
  });
});

describe("ComfyUI binary frames", () => {
  it("read a preview's format from its header, and nothing else as a preview", () => {
    const frame = (...bytes: number[]) => new Uint8Array(bytes).buffer;
    expect(previewOf(frame(0, 0, 0, 1, 0, 0, 0, 2, 5, 6))).toEqual({ content_type: "image/png", image: new Uint8Array([5, 6]) });
    expect(previewOf(frame(0, 0, 0, 1, 0, 0, 0, 1, 5))).toEqual({ content_type: "image/jpeg", image: new Uint8Array([5]) });
    // PREVIEW_IMAGE_WITH_METADATA (4), an unknown format, a header alone.
    expect(previewOf(frame(0, 0, 0, 4, 0, 0, 0, 2, 5))).toBeUndefined();
    expect(previewOf(frame(0, 0, 0, 1, 0, 0, 0, 3, 5))).toBeUndefined();
    expect(previewOf(frame(0, 0, 0, 1, 0, 0, 0, 2))).toBeUndefined();
  });
});

describe("ComfyUI time left", () => {
  it("carries the pace since the first progress message over what remains", () => {
    expect(etaFrom({ at: 1_000, fraction: 0.1 }, { at: 3_000, fraction: 0.3 })).toBeCloseTo(7);
    expect(etaFrom({ at: 1_000, fraction: 0.1 }, { at: 1_000, fraction: 0.1 })).toBeNull();
  });
});

import { describe, expect, it } from "vitest";
import { checkName, checkSubfolder, inputPath, numberedName, outputName, parseOutputName, uploadKey } from "../../../../src/dialects/comfyui/files";
import { RUN_ID } from "../support";

describe("ComfyUI file names", () => {
  it("names an output by its job and place, and reads that back", () => {
    const name = outputName(RUN_ID, 12, "image/webp");
    expect(name).toBe(`${RUN_ID}_00012_.webp`);
    expect(parseOutputName(name)).toEqual({ runId: RUN_ID, index: 12 });
    expect(parseOutputName("ComfyUI_00001_.png")).toBeUndefined();
  });

  it("numbers a clash as ComfyUI does", () => {
    expect(numberedName("cat.png", 1)).toBe("cat (1).png");
    expect(numberedName("README", 2)).toBe("README (2)");
  });

  it("reads a graph's file reference with its subfolder and ComfyUI's [type] note", () => {
    expect(inputPath("pets/cat.png [input]")).toEqual({ subfolder: "pets", name: "cat.png", type: "input" });
    expect(inputPath("cat.png")).toEqual({ subfolder: "", name: "cat.png", type: "input" });
    expect(inputPath("a/b/c.png [output]")).toEqual({ subfolder: "a/b", name: "c.png", type: "output" });
  });

  it("keeps every upload under its tenant's own prefix, whatever the tenant's name holds", () => {
    expect(uploadKey("acme", "input", "pets", "cat.png")).toBe("comfy/acme/input/pets/cat.png");
    expect(uploadKey("a/b", "temp", "", "x.png")).toBe("comfy/a%2Fb/temp/x.png");
  });

  it("refuses names and subfolders that could leave that prefix, naming the field", () => {
    for (const bad of ["..", ".", "a/b", "a\\b", "%2e%2e", "x\u0000", ""]) expect(() => checkName(bad, "image"), bad).toThrow(/image/);
    for (const bad of ["../x", "a//b", "/a", "a/", "a/%2e%2e/b", "a\\b"]) expect(() => checkSubfolder(bad, "subfolder"), bad).toThrow(/subfolder/);
    expect(checkSubfolder("", "subfolder")).toBe("");
    expect(checkSubfolder("a/b c", "subfolder")).toBe("a/b c");
  });
});

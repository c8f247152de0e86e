import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { checkImageNames, checkLoadedFiles } from "../../../src/jobs/workflow-inputs";

describe("a workflow's input image names", () => {
  const names = (...list: string[]) => {
    try {
      checkImageNames(list.map((name) => ({ name })), "images");
      return [];
    } catch (err) {
      return (err as { details: { path: string }[] }).details.map((d) => d.path);
    }
  };

  it("takes plain file names and refuses paths, traversal, control characters, encodings and long names", () => {
    expect(names("cat.png", "my cat (1).webp")).toEqual([]);
    for (const bad of ["../cat.png", "a..b.png", "a/b.png", "a\\b.png", "", "cat\u0000.png", "%2e%2e", "x".repeat(129)]) expect(names(bad)).toEqual(["images.0.name"]);
  });

  it("refuses a name given twice, naming the second", () => {
    expect(names("a.png", "b.png", "a.png")).toEqual(["images.2.name"]);
  });
});

describe("POST /v1/jobs with input images", { timeout: 30_000 }, () => {
  it("is a 422 naming each bad name, before any image is read", async () => {
    // Not an image at all: a name refused first means it was never read.
    const body = { type: "workflow", workflow: { "1": { class_type: "LoadImage", inputs: { image: "cat.png" } }, "2": { class_type: "SaveImage", inputs: { images: ["1", 0] } } }, images: [{ name: "../cat.png", image: "not-base64!" }, { name: "a/b.png", image: "x" }] };
    const res = await exports.default.fetch(new Request("http://gateway.test/v1/jobs", { method: "POST", headers: { authorization: "Bearer sk_acme_1", "content-type": "application/json" }, body: JSON.stringify(body) }));
    expect(res.status).toBe(422);
    const { error } = (await res.json()) as { error: { details: { path: string }[] } };
    expect(error.details.map((d) => d.path)).toEqual(["images.0.name", "images.1.name"]);
  });
});

describe("the files a workflow's loaders name", () => {
  const RUN = `run_${"a".repeat(39)}`;
  const refusedPaths = (image: string, classType = "LoadImage", provided: string[] = [], input = "image") => {
    const graph = { "1": { class_type: classType, inputs: { [input]: image } }, "2": { class_type: "SaveImage", inputs: { images: ["1", 0] } } };
    try {
      checkLoadedFiles(graph, new Set(provided), "workflow");
      return [];
    } catch (err) {
      return (err as { details: { path: string }[] }).details.map((d) => d.path);
    }
  };

  it("may be the job's own images or the backend's own input files", () => {
    for (const image of ["cat.png", "sub/cat.png", "cat.png [input]", "run_notours.png"]) expect(refusedPaths(image)).toEqual([]);
    expect(refusedPaths("mine.png", "LoadImageOutput", ["mine.png"])).toEqual([]);
  });

  it("are never another job's upload or any output the shared backend holds, however they are spelled", () => {
    for (const image of [`${RUN}-1-private.png`, `sub/${RUN}-2-x.png [input]`, "x_00001_.png [output]", "x.png [temp]", "../output/x.png", "/etc/passwd", "a\\..\\b.png", "./x.png"]) {
      expect(refusedPaths(image), image).toEqual(["workflow.1.inputs.image"]);
    }
    expect(refusedPaths("x_00001_.png", "LoadImageOutput")).toEqual(["workflow.1.inputs.image"]);
  });

  it("are checked on every loader, not only LoadImage: WebcamCapture, LoadVideo, LoadAudio, LoadLatent and custom ones", () => {
    for (const [classType, input] of [["WebcamCapture", "image"], ["LoadVideo", "file"], ["LoadAudio", "audio"], ["LoadLatent", "latent"], ["VHS_LoadVideoPath", "video"], ["LoadImageFromPath", "image_path"]] as const) {
      for (const value of ["ComfyUI_00001_.png [output]", "../output/ComfyUI_00001_.png", "/etc/passwd", `${RUN}-1-private.png`]) {
        expect(refusedPaths(value, classType, [], input), `${classType}.${input} = ${value}`).toEqual([`workflow.1.inputs.${input}`]);
      }
      expect(refusedPaths("clip.mp4", classType, [], input)).toEqual([]);
    }
    // Whatever the input's name, an annotated file name reaches other jobs' outputs; other text is left alone.
    expect(refusedPaths("ComfyUI_00001_.png [temp]", "AnyCustomLoader", [], "source")).toEqual(["workflow.1.inputs.source"]);
    expect(refusedPaths("/imagine a cat on ../ a mat", "CLIPTextEncode", [], "text")).toEqual([]);
    expect(refusedPaths("a photo of the final render [output]", "CLIPTextEncode", [], "text")).toEqual([]);
    expect(refusedPaths("weight 1.5 [output]", "CLIPTextEncode", [], "text")).toEqual([]);
    // As ComfyUI reads an annotation: 9 (or 7) characters off the end, whatever the one before it is.
    for (const value of ["ComfyUI_00001_.png-[output]", "ComfyUI_00001_.png)[temp]", "latents/ComfyUI_00001_.latent [output]"]) {
      expect(refusedPaths(value, "SomeCustomLoader", [], "image_name"), value).toEqual(["workflow.1.inputs.image_name"]);
    }
  });

  it("leave alone an image a node takes as base64 (a JPEG's starts with /9j/): it names no file", () => {
    const jpeg = `/9j/4AAQSkZJRgABAQAAAQABAAD/${"A".repeat(120)}`;
    expect(refusedPaths(jpeg, "ETN_LoadImageBase64")).toEqual([]);
    expect(refusedPaths(jpeg, "ETN_LoadMaskBase64", [], "mask")).toEqual([]);
    // Only what decodes to an image: a path of base64's own characters (slashes, letters) is still a path.
    expect(refusedPaths("/etc/passwd", "ETN_LoadImageBase64")).toEqual(["workflow.1.inputs.image"]);
    expect(refusedPaths(`${"/".repeat(50)}comfyui/output`, "LoadImagesFromDir //Inspire", [], "directory")).toEqual(["workflow.1.inputs.directory"]);
    expect(refusedPaths(`${"/".repeat(45)}proc/self/cwd/output`, "VHS_LoadImagesPath", [], "directory")).toEqual(["workflow.1.inputs.directory"]);
  });
});

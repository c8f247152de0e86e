import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { checkImageNames } from "../../../src/jobs/workflow-inputs";

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

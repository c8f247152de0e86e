import { describe, expect, it } from "vitest";
import { call } from "./support";

describe("the dialects in the Worker's OpenAPI document", () => {
  it("lists every dialect route", async () => {
    const doc = (await (await call("/openapi.json")).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/sdapi/v1/txt2img",
        "/sdapi/v1/img2img",
        "/sdapi/v1/sd-models",
        "/sdapi/v1/options",
        "/sdapi/v1/samplers",
        "/api/v3/img2img",
        "/api/v3/text2img",
        "/api/v3/fetch/{id}",
        "/cerebrium/predict",
        "/runpod/run",
        "/runpod/runsync",
        "/runpod/status/{id}",
        "/runpod/cancel/{id}",
        "/eks/v1/tasks",
        "/eks/v1/tasks/{id_task}",
      ]),
    );
  });
});

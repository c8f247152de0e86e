import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { modelByName, modelByVersion, modelObject, versionObject } from "../../../../src/dialects/replicate/models";
import type { Env } from "../../../../src/env";

const VERSION = "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637";
const KEYED = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b";
const withEndpoints = (endpoints: Record<string, unknown>): Env => ({ ...env, ENDPOINTS: JSON.stringify(endpoints) });
const e = withEndpoints({
  "stability-ai/sdxl": { model: "sd_xl_base_1.0" },
  "black-forest-labs/flux-schnell": { version: VERSION, types: ["txt2img"] },
  [KEYED]: { model: "v1-5-pruned-emaonly" },
});

describe("Replicate model names and versions → ENDPOINTS", () => {
  it("owner/name finds its entry; a model without a version reports a stable id derived from its name", async () => {
    const sdxl = await modelByName(e, "stability-ai/sdxl");
    expect(sdxl).toMatchObject({ key: "stability-ai/sdxl", name: "stability-ai/sdxl", endpoint: { model: "sd_xl_base_1.0" } });
    expect(sdxl.version).toMatch(/^[0-9a-f]{64}$/);
    expect((await modelByName(e, "stability-ai/sdxl")).version).toBe(sdxl.version);
    expect((await modelByName(e, "black-forest-labs/flux-schnell")).version).toBe(VERSION);
  });

  it("a version: bare, as owner/name:version, or an entry keyed by it; a version of another model is not found", async () => {
    const sdxl = await modelByName(e, "stability-ai/sdxl");
    expect((await modelByVersion(e, sdxl.version)).key).toBe("stability-ai/sdxl");
    expect((await modelByVersion(e, `black-forest-labs/flux-schnell:${VERSION}`)).key).toBe("black-forest-labs/flux-schnell");
    expect((await modelByVersion(e, "stability-ai/sdxl")).key).toBe("stability-ai/sdxl");
    expect(await modelByVersion(e, KEYED)).toMatchObject({ key: KEYED, version: KEYED });
    await expect(modelByVersion(e, `stability-ai/sdxl:${VERSION}`)).rejects.toMatchObject({ status: 404 });
  });

  it("an unlisted name or version is a 404", async () => {
    for (const find of [() => modelByName(e, "nobody/nothing"), () => modelByName(e, KEYED), () => modelByVersion(e, "0".repeat(64)), () => modelByVersion(e, "nobody/nothing:1")]) {
      await expect(find()).rejects.toMatchObject({ status: 404 });
    }
  });

  it("model and version objects carry what the Python client reads", async () => {
    const flux = await modelByName(e, "black-forest-labs/flux-schnell");
    expect(modelObject("https://easel.test", flux)).toMatchObject({ url: "https://easel.test/v1/models/black-forest-labs/flux-schnell", owner: "black-forest-labs", name: "flux-schnell", visibility: "private", run_count: 0, latest_version: { id: VERSION } });
    const v = versionObject(flux);
    expect(v).toMatchObject({ id: VERSION, cog_version: expect.any(String), created_at: expect.any(String), openapi_schema: { components: { schemas: { Input: { type: "object" }, Output: { type: "array" } } } } });
  });
});

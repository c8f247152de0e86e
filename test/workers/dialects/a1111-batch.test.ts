import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { tenantHome } from "../../../src/tenant-shards";
import { basic, call, tinyPng } from "./support";

const inputs = async () => new Set((await env.IMAGES.list({ prefix: "inputs/" })).objects.map((o) => o.key));

describe("extra-batch-images refused part-way", () => {
  it("refuses a batch past max_active_jobs whole: a 429 in A1111's shape, and no job for any image", async () => {
    // `capped` may have 1 job queued or running; its 2 images cannot both have a place.
    const before = await tenantHome(env, "capped").list({ limit: 10 });
    const res = await call("/sdapi/v1/extra-batch-images", { headers: basic("u", "sk_capped_1"), body: { imageList: [{ data: tinyPng() }, { data: tinyPng() }], upscaling_resize: 2 } });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(await res.json()).toMatchObject({ error: "too_many_active_jobs", detail: "", body: "" });
    expect(await tenantHome(env, "capped").list({ limit: 10 })).toEqual(before);
  });

  it("checks every image before making any job: a bad 3rd image is a 422 naming it, and no job is left", async () => {
    const before = await inputs();
    const res = await call("/sdapi/v1/extra-batch-images", { headers: basic("u", "sk_acme_1"), body: { imageList: [{ data: tinyPng() }, { data: tinyPng() }, { data: btoa("not an image") }], upscaling_resize: 2 } });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ detail: [{ loc: ["body", "imageList", "2", "data"] }] });
    expect(await inputs()).toEqual(before);
  });
});

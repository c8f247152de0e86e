import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { jobStub } from "../../../src/jobs/client";
import { submitJob } from "../../../src/jobs/intake";

const PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const created: string[] = [];
afterEach(async () => {
  for (const id of created.splice(0)) await jobStub(env, id).cancel("acme");
});

describe("intake of large pass-through fields", () => {
  it("moves only the largest fields to R2 and keeps the small ones with the job", async () => {
    const big = "A".repeat(200 * 1024);
    const { snapshot } = await submitJob(
      env,
      { type: "img2img", prompt: "x", init_image: PNG_B64, backend: "hang", model: "v1-5-pruned-emaonly", a1111_extra: { restore_faces: true, alwayson_scripts: { controlnet: { args: [{ notes: big }] } } } },
      { tenant: "acme", dialect: "runpod", publicBaseUrl: "http://gateway.test", dialectData: { endpoint: "ep-1", parameters: { echo: big } } },
    );
    created.push(snapshot.job.id);
    const input = snapshot.input;
    // What renders a running job stays with it, whatever else was too large.
    expect(input.dialect_data).toEqual({ endpoint: "ep-1" });
    expect(input.spec.a1111_extra).toEqual({ restore_faces: true });
    const moved = await (await env.IMAGES.get(input.pass_through_key ?? ""))?.json();
    expect(moved).toEqual({ a1111_extra: { alwayson_scripts: { controlnet: { args: [{ notes: big }] } } }, dialect_data: { parameters: { echo: big } } });
  });

  it("splits an object of thousands of fields in one pass, moving only enough of them: the job keeps its model and version", async () => {
    const input: Record<string, unknown> = { prompt: "a cat" };
    for (let i = 0; i < 8000; i++) input[`unknown_field_${i}`] = `value number ${i} of a client's unknown inputs`;
    const { snapshot } = await submitJob(
      env,
      { type: "img2img", prompt: "a cat", init_image: PNG_B64, backend: "hang", model: "v1-5-pruned-emaonly" },
      { tenant: "acme", dialect: "replicate", publicBaseUrl: "http://gateway.test", dialectData: { model: "acme/sd", version: "v1", input } },
    );
    created.push(snapshot.job.id);
    const kept = snapshot.input.dialect_data as { model?: string; version?: string; input?: Record<string, unknown> };
    expect(kept).toMatchObject({ model: "acme/sd", version: "v1" });
    expect(JSON.stringify(kept).length).toBeLessThanOrEqual(64 * 1024);
    const moved = (await (await env.IMAGES.get(snapshot.input.pass_through_key ?? ""))?.json()) as { dialect_data: { input: Record<string, unknown> } };
    expect(Object.keys(moved.dialect_data.input).length + Object.keys(kept.input ?? {}).length).toBe(8001);
  });

  it("moves an object's large field alone (a Replicate input's image), keeping its small ones with the job, and joins them again for a full rendering", async () => {
    const image = `data:image/png;base64,${"A".repeat(120 * 1024)}`;
    const { snapshot } = await submitJob(
      env,
      { type: "img2img", prompt: "a cat", init_image: PNG_B64, backend: "hang", model: "v1-5-pruned-emaonly" },
      { tenant: "acme", dialect: "replicate", publicBaseUrl: "http://gateway.test", dialectData: { model: "acme/sd", input: { prompt: "a cat", width: 512, image } } },
    );
    const id = snapshot.job.id;
    created.push(id);
    // A running prediction still shows its prompt.
    expect(snapshot.input.dialect_data).toEqual({ model: "acme/sd", input: { prompt: "a cat", width: 512 } });
    expect(await (await env.IMAGES.get(snapshot.input.pass_through_key ?? ""))?.json()).toEqual({ a1111_extra: {}, dialect_data: { input: { image } } });
    await jobStub(env, id).cancel("acme");
    const full = await jobStub(env, id).get("acme", { full: true });
    expect(full.ok && full.snapshot.input.dialect_data).toEqual({ model: "acme/sd", input: { prompt: "a cat", width: 512, image } });
  });
});

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
      { type: "img2img", prompt: "x", init_image: PNG_B64, backend: "hang", model: "v1-5-pruned-emaonly", a1111_extra: { restore_faces: true, alwayson_scripts: { controlnet: { args: [{ image: big }] } } } },
      { tenant: "acme", dialect: "runpod", publicBaseUrl: "http://gateway.test", dialectData: { endpoint: "ep-1", parameters: { echo: big } } },
    );
    created.push(snapshot.job.id);
    const input = snapshot.input;
    // What renders a running job stays with it, whatever else was too large.
    expect(input.dialect_data).toEqual({ endpoint: "ep-1" });
    expect(input.spec.a1111_extra).toEqual({ restore_faces: true });
    const moved = await (await env.IMAGES.get(input.pass_through_key ?? ""))?.json();
    expect(moved).toEqual({ a1111_extra: { alwayson_scripts: { controlnet: { args: [{ image: big }] } } }, dialect_data: { parameters: { echo: big } } });
  });
});

describe("intake's unknown-model rule, for the dialects that ask for it", () => {
  const a1111 = { tenant: "acme", dialect: "a1111", publicBaseUrl: "http://gateway.test", fields: { model: "override_settings.sd_model_checkpoint" }, knownModelsOnly: true } as const;

  it("refuses a model no backend lists with a 422 naming the dialect's field; a pin that overrides the lists runs it", async () => {
    const refused = submitJob(env, { type: "img2img", prompt: "x", init_image: PNG_B64, model: "no-such-model" }, a1111);
    await expect(refused).rejects.toMatchObject({ status: 422, details: [{ path: "override_settings.sd_model_checkpoint", message: 'unknown model "no-such-model"' }] });
    const { snapshot, created: made } = await submitJob(env, { type: "img2img", prompt: "x", init_image: PNG_B64, model: "no-such-model", backend: "hang", pin_overrides_models: true }, a1111);
    created.push(snapshot.job.id);
    expect(made).toBe(true);
  });
});

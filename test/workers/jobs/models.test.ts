import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { requireKnownModel } from "../../../src/jobs/models";

describe("the unknown-model rule", () => {
  it("lets through a model a backend lists, in any of its spellings, and a request that names none", async () => {
    await expect(requireKnownModel(env, "v1-5-pruned-emaonly", "model")).resolves.toBeUndefined();
    await expect(requireKnownModel(env, "v1-5-pruned-emaonly.safetensors", "model")).resolves.toBeUndefined();
    await expect(requireKnownModel(env, undefined, "model")).resolves.toBeUndefined();
  });

  it("refuses a model no backend lists with a 422 naming the client's own field", async () => {
    await expect(requireKnownModel(env, "no-such-model", "override_settings.sd_model_checkpoint")).rejects.toMatchObject({
      status: 422,
      details: [{ path: "override_settings.sd_model_checkpoint", message: 'unknown model "no-such-model"' }],
    });
  });
});

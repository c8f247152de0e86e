import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { modelCatalog } from "../../../src/backends/catalog";
import { randomId } from "../../../src/lib/crypto";
import { requireKnownModel } from "../../../src/dialects/models";
import type { Env } from "../../../src/env";

/** The Worker's environment with these backends: an A1111 with a configured list, and a RunPod endpoint that reports its own. */
const withRunPod = (endpoint: string): Env => ({
  ...env,
  BACKENDS: JSON.stringify([
    { name: "listed", kind: "a1111", url: "http://127.0.0.1:9", models: ["v1-5-pruned-emaonly"] },
    { name: "rp", kind: "runpod", url: `${inject("hangingBackendUrl")}/v2/${endpoint}` },
  ]),
});
const calls = async (path: string) => Number(await (await fetch(`${inject("hangingBackendUrl")}/_calls?path=${encodeURIComponent(path)}`)).text());

describe("model catalog", () => {
  it("asks a RunPod endpoint for its models once, not on every listing: each ask is a billed getModels job", async () => {
    const endpoint = `warm-${randomId("ep")}`;
    const e = withRunPod(endpoint);
    const first = await modelCatalog(e);
    expect(first.models.find((m) => m.model.model_name === "chilloutmix-Ni")?.backends).toEqual(["rp"]);
    for (let i = 0; i < 5; i++) await modelCatalog(e);
    await requireKnownModel(e, "chilloutmix-Ni", "model");
    expect(await calls(`/v2/${endpoint}/runsync`)).toBe(1);
  });

  it("does not call a model unknown while a cold RunPod endpoint has not said what it serves", async () => {
    const endpoint = `cold-${randomId("ep")}`;
    const e = withRunPod(endpoint);
    expect((await modelCatalog(e)).unknown).toEqual(["rp"]);
    await expect(requireKnownModel(e, "chilloutmix-Ni", "model")).resolves.toBeUndefined();
    // Nor is the cold endpoint woken again by the next request.
    await requireKnownModel(e, "chilloutmix-Ni", "model");
    expect(await calls(`/v2/${endpoint}/runsync`)).toBe(1);
  });

  it("still refuses a model nobody serves when every backend has said what it serves", async () => {
    const e = withRunPod(`warm-${randomId("ep")}`);
    await expect(requireKnownModel(e, "no-such-model", "model")).rejects.toMatchObject({ status: 422 });
  });
});

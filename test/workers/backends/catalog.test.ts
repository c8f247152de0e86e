import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { modelCatalog } from "../../../src/backends/catalog";
import { config } from "../../../src/config";
import { randomId } from "../../../src/lib/crypto";
import { requireKnownModel } from "../../../src/jobs/models";
import type { Env } from "../../../src/env";
import { schedulerObjects } from "../support/objects";

/** The Worker's environment with these backends: an A1111 with a configured list, and a RunPod endpoint that reports its own. */
const withRunPod = (endpoint: string, name = "rp"): Env => ({
  ...env,
  BACKENDS: JSON.stringify([
    { name: "listed", kind: "a1111", url: "http://127.0.0.1:9", models: ["v1-5-pruned-emaonly"] },
    { name, kind: "runpod", url: `${inject("hangingBackendUrl")}/v2/${endpoint}` },
  ]),
});
const backend = (path: string) => fetch(`${inject("hangingBackendUrl")}${path}`, { method: path.startsWith("/_release") ? "POST" : "GET" }).then((r) => r.text());
const calls = async (path: string) => Number(await backend(`/_calls?path=${encodeURIComponent(path)}`));
/** Listings the backend holds unanswered. */
const held = async (path: string) => Number(await backend(`/_held?path=${encodeURIComponent(path)}`));
const release = (path: string) => backend(`/_release?path=${encodeURIComponent(path)}`);

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

  it("asks a backend once for readers at the same time, and another isolate reads the list its scheduler keeps", async () => {
    const endpoint = `warm-${randomId("ep")}`;
    const name = `rp-${endpoint}`;
    const e = withRunPod(endpoint, name);
    await Promise.all([modelCatalog(e), modelCatalog(e), requireKnownModel(e, "chilloutmix-Ni", "model")]);
    expect(await calls(`/v2/${endpoint}/runsync`)).toBe(1);
    // An isolate with nothing of its own asks the backend's scheduler, which answers from what it keeps.
    const rp = config.backends(e).find((b) => b.name === name);
    if (!rp) throw new Error("no rp backend");
    const kept = await schedulerObjects.get(schedulerObjects.idFromName(name)).models(rp, 0);
    expect(kept.models.map((m) => m.model_name)).toEqual(["chilloutmix-Ni"]);
    expect(await calls(`/v2/${endpoint}/runsync`)).toBe(1);
  });

  it("does not hold a submit's model check on a backend slow to list: it is let through, and the list comes to later readers", async () => {
    const endpoint = `held-${randomId("ep")}`;
    const path = `/v2/${endpoint}/runsync`;
    const e = withRunPod(endpoint, `rp-${endpoint}`);
    await expect(requireKnownModel(e, "no-such-model", "model")).resolves.toBeUndefined();
    // Answered while the backend still holds the listing: the check did not wait for it.
    expect(await held(path)).toBe(1);
    await release(path);
    expect((await modelCatalog(e)).models.find((m) => m.model.model_name === "chilloutmix-Ni")?.backends).toEqual([`rp-${endpoint}`]);
    await expect(requireKnownModel(e, "no-such-model", "model")).rejects.toMatchObject({ status: 422 });
    expect(await calls(path)).toBe(1);
  });
});

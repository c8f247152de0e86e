import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { configKey } from "../../../durable-objects/backend-catalog";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import { config } from "../../../src/config";
import { requireKnownModel } from "../../../src/jobs/models";
import { schedulerObjects } from "../support/objects";

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

describe("the unknown-model rule across isolates", () => {
  // An A1111 backend that serves any model: what it serves is what its scheduler object lists.
  const testEnv = { ...env, BACKENDS: JSON.stringify([{ name: "catalog-refreshed", kind: "a1111", url: "http://127.0.0.1:9" }]) };
  const model = (title: string) => ({ title, model_name: title, hash: null, sha256: null, filename: title, config: null, backend: "catalog-refreshed" });
  const listed = async (titles: string[]) => {
    const [b] = config.backends(testEnv);
    if (!b) throw new Error("no backend");
    const key = await configKey(b);
    await runInDurableObject(schedulerObjects.get(schedulerObjects.idFromName(b.name)), (o: BackendScheduler, st) => {
      // The catalog's table is made at the object's first use.
      void o;
      st.storage.sql.exec("INSERT OR REPLACE INTO catalog (id, config, models, fetched_at, asked_at, answered) VALUES (1, ?, ?, ?, ?, 1)", key, JSON.stringify(titles.map(model)), Date.now(), Date.now());
    });
  };

  it("asks the backends' scheduler objects again before calling a model unknown: another isolate may have run refresh-checkpoints", async () => {
    await listed(["old-model"]);
    // This isolate now keeps the old list for a few seconds.
    await expect(requireKnownModel(testEnv, "old-model", "model")).resolves.toBeUndefined();
    // A refresh elsewhere: the scheduler's list has the new checkpoint, this isolate's copy not.
    await listed(["old-model", "new-model"]);
    await expect(requireKnownModel(testEnv, "new-model", "model")).resolves.toBeUndefined();
    await expect(requireKnownModel(testEnv, "no-such-model", "model")).rejects.toMatchObject({ status: 422 });
  });
});

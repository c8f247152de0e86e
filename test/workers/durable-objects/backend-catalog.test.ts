import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, inject, it, vi } from "vitest";
import { LIST_TIMEOUT_MS } from "../../../src/contracts/scheduler";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import { config } from "../../../src/config";
import { randomId } from "../../../src/lib/crypto";
import { schedulerObjects } from "../support/objects";

const backend = (path: string) => fetch(`${inject("hangingBackendUrl")}${path}`, { method: path.startsWith("/_release") ? "POST" : "GET" }).then((r) => r.text());
const calls = async (path: string) => Number(await backend(`/_calls?path=${encodeURIComponent(path)}`));
/** Listings the backend holds unanswered. */
const held = async (path: string) => Number(await backend(`/_held?path=${encodeURIComponent(path)}`));
const release = (path: string, fail = false) => backend(`/_release?path=${encodeURIComponent(path)}${fail ? "&fail=1" : ""}`);

/** A RunPod backend whose listing the test answers (`held-*`), and its scheduler. */
function heldRunPod() {
  const endpoint = `held-${randomId("ep")}`;
  const [b] = config.backends({ ...env, BACKENDS: JSON.stringify([{ name: `rp-${endpoint}`, kind: "runpod", url: `${inject("hangingBackendUrl")}/v2/${endpoint}` }]) });
  if (!b) throw new Error("no backend");
  return { b, path: `/v2/${endpoint}/runsync`, scheduler: schedulerObjects.get(schedulerObjects.idFromName(b.name)) };
}

describe("backend catalog (in the backend's scheduler)", () => {
  it("serves the last list at once once it is due, while one ask renews it in the background", async () => {
    const { b, path, scheduler } = heldRunPod();
    const first = scheduler.models(b, LIST_TIMEOUT_MS);
    await vi.waitFor(async () => expect(await held(path)).toBe(1));
    await release(path);
    expect((await first).models.map((m) => m.model_name)).toEqual(["chilloutmix-Ni"]);

    // Two hours on, past RunPod's TTL: due again.
    await runInDurableObject(scheduler, (_o: BackendScheduler, state) => {
      state.storage.sql.exec("UPDATE catalog SET asked_at = asked_at - ?", 2 * 3600_000);
    });
    const [a, c] = await Promise.all([scheduler.models(b, LIST_TIMEOUT_MS), scheduler.models(b, LIST_TIMEOUT_MS)]);
    expect([a, c].map((r) => r.models.map((m) => m.model_name))).toEqual([["chilloutmix-Ni"], ["chilloutmix-Ni"]]);
    // Both answered while the renewal is still out, and they share it.
    expect(await held(path)).toBe(1);
    expect(await calls(path)).toBe(2);

    await release(path);
    await vi.waitFor(async () => {
      const asked = await runInDurableObject(scheduler, (_o: BackendScheduler, state) => state.storage.sql.exec<{ asked_at: number }>("SELECT asked_at FROM catalog").one().asked_at);
      expect(Date.now() - asked).toBeLessThan(3600_000);
    });
    await scheduler.models(b, LIST_TIMEOUT_MS);
    expect(await calls(path)).toBe(2);
  });

  it("keeps the last list through an ask that fails, and asks again only after UNKNOWN_TTL", async () => {
    const { b, path, scheduler } = heldRunPod();
    const first = scheduler.models(b, LIST_TIMEOUT_MS);
    await vi.waitFor(async () => expect(await held(path)).toBe(1));
    await release(path);
    await first;
    await runInDurableObject(scheduler, (_o: BackendScheduler, state) => {
      state.storage.sql.exec("UPDATE catalog SET asked_at = asked_at - ?", 2 * 3600_000);
    });
    // Due: the last list is answered at once while one ask renews it, and that ask fails.
    expect((await scheduler.models(b, LIST_TIMEOUT_MS)).models.map((m) => m.model_name)).toEqual(["chilloutmix-Ni"]);
    await vi.waitFor(async () => expect(await held(path)).toBe(1));
    await release(path, true);
    await vi.waitFor(async () => {
      const answered = await runInDurableObject(scheduler, (_o: BackendScheduler, state) => state.storage.sql.exec<{ answered: number }>("SELECT answered FROM catalog").one().answered);
      expect(answered).toBe(0);
    });
    expect((await scheduler.models(b, 0)).models.map((m) => m.model_name)).toEqual(["chilloutmix-Ni"]);
    expect(await calls(path)).toBe(2);
  });
});

import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { RESCAN_INTERVAL_MS } from "../../../durable-objects/backend-rescans";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import { refreshA1111 } from "../../../src/dialects/a1111/lists";
import { randomId } from "../../../src/lib/crypto";
import { schedulerObjects } from "../support/objects";

const calls = async (path: string) => Number(await (await fetch(`${inject("hangingBackendUrl")}/_calls?path=${encodeURIComponent(path)}`)).text());

/** A deployment whose one A1111 backend answers its lists at once (`/lists-*`), and that backend's scheduler. */
function listingA1111() {
  const id = `lists-${randomId("a")}`;
  return {
    env: { ...env, BACKENDS: JSON.stringify([{ name: id, kind: "a1111", url: `${inject("hangingBackendUrl")}/${id}` }]) },
    path: (p: string) => `/${id}${p}`,
    scheduler: schedulerObjects.get(schedulerObjects.idFromName(id)),
  };
}

describe("A1111 refresh-checkpoints and refresh-loras", () => {
  it("reach each backend at most once per interval however many ask at once, then once more", async () => {
    const d = listingA1111();
    await Promise.all(Array.from({ length: 5 }, () => refreshA1111(d.env, "loras")));
    await refreshA1111(d.env, "loras");
    expect(await calls(d.path("/sdapi/v1/refresh-loras"))).toBe(1);
    // The interval is over: the next refresh reaches the backend again.
    await runInDurableObject(d.scheduler, (_o: BackendScheduler, state) => {
      state.storage.sql.exec("UPDATE rescans SET at = at - ?", RESCAN_INTERVAL_MS);
    });
    await refreshA1111(d.env, "loras");
    expect(await calls(d.path("/sdapi/v1/refresh-loras"))).toBe(2);
  });

  it("list the checkpoints afresh with a rescan only, each kind of rescan on its own interval", async () => {
    const d = listingA1111();
    await Promise.all(Array.from({ length: 3 }, () => refreshA1111(d.env, "checkpoints")));
    await refreshA1111(d.env, "checkpoints");
    expect(await calls(d.path("/sdapi/v1/refresh-checkpoints"))).toBe(1);
    expect(await calls(d.path("/sdapi/v1/sd-models"))).toBe(1);
    await refreshA1111(d.env, "loras");
    expect(await calls(d.path("/sdapi/v1/refresh-loras"))).toBe(1);
  });
});

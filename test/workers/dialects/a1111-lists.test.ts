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
  it("reach each backend once however many ask at once; one asked after that rescan began waits for a rescan of its own, at the interval's end", async () => {
    const d = listingA1111();
    await Promise.all(Array.from({ length: 5 }, () => refreshA1111(d.env, "loras")));
    expect(await calls(d.path("/sdapi/v1/refresh-loras"))).toBe(1);
    // A refresh asked now is not dropped (a file added since would not be listed): it waits for
    // the interval's end, brought forward here, and its own rescan, shared by any asked meanwhile.
    const later = Promise.all([refreshA1111(d.env, "loras"), refreshA1111(d.env, "loras")]);
    await runInDurableObject(d.scheduler, (_o: BackendScheduler, state) => {
      state.storage.sql.exec("UPDATE rescans SET at = at - ?", RESCAN_INTERVAL_MS);
    });
    await later;
    expect(await calls(d.path("/sdapi/v1/refresh-loras"))).toBe(2);
  });

  it("list the checkpoints afresh with a rescan only, each kind of rescan on its own interval", async () => {
    const d = listingA1111();
    await Promise.all(Array.from({ length: 3 }, () => refreshA1111(d.env, "checkpoints")));
    expect(await calls(d.path("/sdapi/v1/refresh-checkpoints"))).toBe(1);
    expect(await calls(d.path("/sdapi/v1/sd-models"))).toBe(1);
    await refreshA1111(d.env, "loras");
    expect(await calls(d.path("/sdapi/v1/refresh-loras"))).toBe(1);
  });
});

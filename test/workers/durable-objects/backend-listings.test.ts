import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import type { BackendScheduler } from "../../../durable-objects/backend-scheduler";
import { config } from "../../../src/config";
import { randomId } from "../../../src/lib/crypto";
import { schedulerObjects } from "../support/objects";

const calls = async (path: string) => Number(await (await fetch(`${inject("hangingBackendUrl")}/_calls?path=${encodeURIComponent(path)}`)).text());

describe("backend listings (in the backend's scheduler)", () => {
  it("keeps a server's answer for its TTL, then asks it once more", async () => {
    const name = `lists-${randomId("l")}`;
    const [b] = config.backends({ ...env, BACKENDS: JSON.stringify([{ name, kind: "comfyui", url: `${inject("hangingBackendUrl")}/${name}` }]) });
    if (!b) throw new Error("no backend");
    const scheduler = schedulerObjects.get(schedulerObjects.idFromName(name));
    expect(JSON.parse((await scheduler.listing(b, "/embeddings")) ?? "null")).toEqual(["embedding"]);
    await scheduler.listing(b, "/embeddings");
    expect(await calls(`/${name}/embeddings`)).toBe(1);
    // A minute on: past every listing's TTL.
    await runInDurableObject(scheduler, (o: BackendScheduler) => {
      const kept = (o as unknown as { listings: { kept: Map<string, { at: number }> } }).listings.kept;
      for (const k of kept.values()) k.at -= 60_000;
    });
    await scheduler.listing(b, "/embeddings");
    expect(await calls(`/${name}/embeddings`)).toBe(2);
  });
});

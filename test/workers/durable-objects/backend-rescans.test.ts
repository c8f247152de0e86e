import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { config } from "../../../src/config";
import { randomId } from "../../../src/lib/crypto";
import { schedulerObjects } from "../support/objects";

const calls = async (path: string) => Number(await (await fetch(`${inject("hangingBackendUrl")}/_calls?path=${encodeURIComponent(path)}`)).text());

describe("backend rescans (in the backend's scheduler)", () => {
  it("count a rescan the backend refused: a failing backend is not asked on every refresh", { timeout: 20_000 }, async () => {
    const name = `lists-${randomId("r")}`;
    // An A1111 that answers its refresh with a 404 (`/lists-*` knows no `/broken/...`).
    const [b] = config.backends({ ...env, BACKENDS: JSON.stringify([{ name, kind: "a1111", url: `${inject("hangingBackendUrl")}/${name}/broken` }]) });
    if (!b) throw new Error("no backend");
    const scheduler = schedulerObjects.get(schedulerObjects.idFromName(name));
    expect(await Promise.all([scheduler.rescan(b, "loras"), scheduler.rescan(b, "loras")])).toEqual([true, true]);
    expect(await calls(`/${name}/broken/sdapi/v1/refresh-loras`)).toBe(1);
    // Another configuration of the backend (a new URL) is rescanned at once.
    expect(await scheduler.rescan({ ...b, url: `${inject("hangingBackendUrl")}/${name}` }, "loras")).toBe(true);
    expect(await calls(`/${name}/sdapi/v1/refresh-loras`)).toBe(1);
  });
});

import { describe, expect, it } from "vitest";
import type { Env } from "../../../src/env";
import { callbackToken, verifyCallbackToken } from "../../../src/jobs/callback-token";

const keyed = (URL_SIGNING_SECRET: string): Env => ({ URL_SIGNING_SECRET }) as Env;

describe("backend callback tokens across a key rotation", () => {
  it("accepts a callback issued under the old key while it is listed, refuses it once dropped", async () => {
    const token = await callbackToken(keyed("old"), "run_x", 1);
    expect(await verifyCallbackToken(keyed("new,old"), "run_x", 1, token)).toBe(true);
    expect(await verifyCallbackToken(keyed("new"), "run_x", 1, token)).toBe(false);
    // Issued after the rotation: under the new key, the first listed.
    expect(await callbackToken(keyed("new,old"), "run_x", 1)).toBe(await callbackToken(keyed("new"), "run_x", 1));
  });

  it("binds the token to its run and attempt", async () => {
    const token = await callbackToken(keyed("k"), "run_x", 1);
    expect(await verifyCallbackToken(keyed("k"), "run_x", 2, token)).toBe(false);
    expect(await verifyCallbackToken(keyed("k"), "run_y", 1, token)).toBe(false);
  });
});

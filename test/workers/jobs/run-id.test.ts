import { describe, expect, it } from "vitest";
import type { Env } from "../../../src/env";
import { EaselError } from "../../../src/errors";
import { checkInstantId, checkRunId, mintInstantId, mintRunId } from "../../../src/jobs/run-id";
import { base32, base32Decode, randomId } from "../../../src/lib/crypto";

const keyed = (URL_SIGNING_SECRET: string): Env => ({ URL_SIGNING_SECRET }) as Env;

describe("run ids", () => {
  it("are run_ + 39 base32 characters, 128 random bits each, never twice", async () => {
    const env = keyed("k");
    const ids = new Set(await Promise.all(Array.from({ length: 500 }, () => mintRunId(env))));
    expect(ids.size).toBe(500);
    for (const id of ids) expect(id).toMatch(/^run_[a-z2-7]{39}$/);
  });

  it("check out under the key that minted them, and after a rotation only while that key is listed", async () => {
    const id = await mintRunId(keyed("old"));
    expect(await checkRunId(keyed("old"), id)).toBe(true);
    expect(await checkRunId(keyed("new,old"), id)).toBe(true);
    expect(await checkRunId(keyed("new"), id)).toBe(false);
    expect(await checkRunId(keyed("new,old"), await mintRunId(keyed("new,old")))).toBe(true);
    expect(await checkRunId(keyed("new"), await mintRunId(keyed("new,old")))).toBe(true);
  });

  it("refuses well-formed ids it did not mint, altered ones and second spellings", async () => {
    const env = keyed("k");
    const id = await mintRunId(env);
    const body = id.slice(4);
    const flipped = `run_${body[0] === "a" ? "b" : "a"}${body.slice(1)}`;
    const bytes = base32Decode(body) ?? new Uint8Array();
    const forged = crypto.getRandomValues(new Uint8Array(24));
    for (const bad of [randomId("run"), `run_${base32(forged)}`, flipped, `run_${body.slice(0, -1)}7`, `run_${base32(bytes)}a`, id.toUpperCase(), `${id} `, "run_", ""]) {
      expect(await checkRunId(env, bad)).toBe(false);
    }
  });

  it("binds an instant answer's id to the endpoint it was given at, and keeps it apart from run ids", async () => {
    const env = keyed("k");
    const id = await mintInstantId(env, "abc123");
    expect(id).toMatch(/^sync-[a-z2-7]{39}$/);
    expect(await checkInstantId(env, id, "abc123")).toBe(true);
    for (const other of ["zzz", "abc1234", "abc12", "runpod", ""]) expect(await checkInstantId(env, id, other)).toBe(false);
    expect(await checkRunId(env, `run_${id.slice(5)}`)).toBe(false);
  });

  it("has no key to mint or check with when none is configured: a 500 naming URL_SIGNING_SECRET", async () => {
    const none = {} as Env;
    await expect(mintRunId(none)).rejects.toMatchObject({ status: 500, code: "config_invalid", message: expect.stringMatching(/^URL_SIGNING_SECRET/) });
    await expect(checkRunId(none, "run_x")).rejects.toBeInstanceOf(EaselError);
  });
});

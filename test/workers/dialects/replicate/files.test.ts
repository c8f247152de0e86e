import { env } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { fileInput, fileObject, readFile, storeFile } from "../../../../src/dialects/replicate/files";
import { base64ToBytes } from "../../../../src/lib/base64";
import { tinyPng } from "../support";

const pngBytes = () => base64ToBytes(tinyPng()) ?? new Uint8Array();
const png = () => new File([pngBytes()], "buffer_1", { type: "application/octet-stream" });

describe("Replicate files", () => {
  it("keeps an upload for its tenant, typed by its bytes, and hands out its URL", async () => {
    const stored = await storeFile(env, "acme", png(), { purpose: "test" });
    const obj = fileObject("https://easel.test", stored);
    expect(obj).toMatchObject({ id: stored.id, name: "buffer_1", content_type: "image/png", size: pngBytes().byteLength, metadata: { purpose: "test" }, urls: { get: `https://easel.test/v1/files/${stored.id}` }, checksums: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    expect(Date.parse(obj.expires_at) - Date.parse(obj.created_at)).toBe(24 * 3600_000);
  });

  it("takes metadata and a name up to what R2 keeps beside the file, and refuses more with a 422 naming the part", async () => {
    const kept = await storeFile(env, "acme", png(), { note: "x".repeat(1500) });
    expect((await readFile(env, "acme", kept.id))?.meta.metadata).toBe(JSON.stringify({ note: "x".repeat(1500) }));
    // Counted in UTF-8 bytes: 1,000 "é" are 2,000.
    await expect(storeFile(env, "acme", png(), { note: "é".repeat(1000) })).rejects.toMatchObject({ status: 422, details: [{ path: "metadata" }] });
    await expect(storeFile(env, "acme", new File([pngBytes()], "n".repeat(1900)), {})).rejects.toMatchObject({ status: 422, details: [{ path: "content" }] });
  });

  it("its URL as an input reads the bytes for that tenant only; other strings are left to intake", async () => {
    const { id } = await storeFile(env, "acme", png(), {});
    const url = `https://easel.test/v1/files/${id}`;
    expect(await fileInput(env, "acme", "https://easel.test", url, "input.image")).toEqual(base64ToBytes(tinyPng()));
    await expect(fileInput(env, "globex", "https://easel.test", url, "input.image")).rejects.toMatchObject({ status: 422, details: [{ path: "input.image" }] });
    expect(await fileInput(env, "acme", "https://easel.test", "https://example.com/a.png", "input.image")).toBeUndefined();
    expect(await readFile(env, "globex", id)).toBeUndefined();
  });

  it("an expired file is gone, and its object deleted", async () => {
    const { id } = await storeFile(env, "acme", png(), {}, Date.now() - 25 * 3600_000);
    expect(await readFile(env, "acme", id)).toBeUndefined();
    expect(await env.IMAGES.head(`replicate-files/${id}`)).toBeNull();
  });

  it("an expired file is deleted by its tenant's object, with nobody asking for it again", async () => {
    const { id } = await storeFile(env, "files-expire", png(), {}, Date.now() - 25 * 3600_000);
    const kept = await storeFile(env, "files-expire", png(), {});
    // Its expiry is past: the object's alarm may fire on its own before the test runs it.
    await runDurableObjectAlarm(env.TENANT_STATE.get(env.TENANT_STATE.idFromName("files-expire")));
    for (let i = 0; i < 100 && (await env.IMAGES.head(`replicate-files/${id}`)) !== null; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await env.IMAGES.head(`replicate-files/${id}`)).toBeNull();
    expect(await env.IMAGES.head(`replicate-files/${kept.id}`)).not.toBeNull();
  });

  it("an id that is not one of ours reads nothing", async () => {
    expect(await readFile(env, "acme", "../outputs/x")).toBeUndefined();
  });
});

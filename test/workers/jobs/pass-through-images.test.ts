import { describe, expect, it } from "vitest";
import { MAX_IMAGE_DEPTH, MAX_PASS_THROUGH_IMAGES, readPassThroughImages, type PassThroughImageOptions } from "../../../src/jobs/pass-through-images";
import { base64ToBytes, bytesToBase64 } from "../../../src/lib/base64";

/** A whole 1x1 PNG, as base64. */
const PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const PNG = base64ToBytes(PNG_B64) ?? new Uint8Array();
/** The same PNG, its header saying 20000x20000. */
const BOMB_B64 = (() => {
  const b = PNG.slice();
  new DataView(b.buffer).setUint32(16, 20_000);
  new DataView(b.buffer).setUint32(20, 20_000);
  return bytesToBase64(b);
})();

/** A fetcher standing in for the network: every URL answers the PNG; `asked` lists the URLs it was asked for. */
function network() {
  const asked: string[] = [];
  const fetcher = (async (input: RequestInfo | URL) => {
    asked.push(String(input));
    return new Response(PNG, { headers: { "content-type": "image/png" } });
  }) as typeof fetch;
  return { asked, fetcher };
}

const options = (over: Partial<PassThroughImageOptions> = {}): PassThroughImageOptions => ({ under: "", allowPrivate: false, maxBytes: 1024 * 1024, maxTotalBytes: 4 * 1024 * 1024, ...network(), ...over });

describe("images in A1111's pass-through fields", () => {
  it("gives back the same object when no field can hold an image, or none does", async () => {
    const plain = { restore_faces: true, script_args: ["https://example.com/not-an-image-field"] };
    expect(await readPassThroughImages(plain, options())).toBe(plain);
    const scripts = { mask: null, alwayson_scripts: { controlnet: { args: [{ module: "canny", model: "control_v11p_sd15_canny", weight: 1 }] } } };
    expect(await readPassThroughImages(scripts, options())).toBe(scripts);
    expect(await readPassThroughImages(undefined, options())).toBeUndefined();
  });

  it("leaves text that only starts like a data URI as the client sent it, outside the image fields", async () => {
    const text = { alwayson_scripts: { note: { args: ["data::not an image", "data:text/plain,hello"] } } };
    expect(await readPassThroughImages(text, options())).toBe(text);
  });

  it("fetches a URL in mask and in script arguments, sends its base64, and leaves the client's object and other arguments as they were", async () => {
    const { asked, fetcher } = network();
    const sent = {
      mask: "https://images.example/mask.png",
      alwayson_scripts: { controlnet: { args: [{ module: "canny", image: "https://images.example/a.png" }, { image: { image: `data:image/png;base64,${PNG_B64}`, mask: "" } }] }, reactor: { args: ["HTTPS://images.example/face.png", true, 1] } },
    };
    const before = structuredClone(sent);
    const out = await readPassThroughImages(sent, options({ fetcher }));
    expect(asked).toEqual(["https://images.example/mask.png", "https://images.example/a.png", "https://images.example/face.png"]);
    expect(out).toEqual({
      mask: PNG_B64,
      alwayson_scripts: { controlnet: { args: [{ module: "canny", image: PNG_B64 }, { image: { image: PNG_B64, mask: "" } }] }, reactor: { args: [PNG_B64, true, 1] } },
    });
    expect(sent).toEqual(before);
  });

  it("refuses a private URL before any fetch, naming its field under the dialect's envelope", async () => {
    const { asked, fetcher } = network();
    const sent = { alwayson_scripts: { controlnet: { args: [{ image: "http://169.254.169.254/latest/meta-data/" }] } } };
    await expect(readPassThroughImages(sent, options({ fetcher, under: "input." }))).rejects.toMatchObject({ status: 422, code: "invalid_url", details: [{ path: "input.alwayson_scripts.controlnet.args.0.image" }] });
    await expect(readPassThroughImages({ mask: "https://10.0.0.5/m.png" }, options({ fetcher, allowPrivate: false }))).rejects.toMatchObject({ status: 422, details: [{ path: "mask" }] });
    expect(asked).toEqual([]);
  });

  it("checks raw base64 under an image key or starting as an image anywhere, and keeps it as sent", async () => {
    const sent = { mask: PNG_B64, alwayson_scripts: { x: { args: [PNG_B64, "a".repeat(200)] } } };
    expect(await readPassThroughImages(sent, options())).toEqual(sent);
    await expect(readPassThroughImages({ mask: BOMB_B64 }, options())).rejects.toMatchObject({ status: 422, code: "image_too_large", details: [{ path: "mask", message: expect.stringMatching(/20000x20000 is over \d+ pixels/) as string }] });
    await expect(readPassThroughImages({ alwayson_scripts: { x: { args: [true, BOMB_B64] } } }, options())).rejects.toMatchObject({ status: 422, code: "image_too_large", details: [{ path: "alwayson_scripts.x.args.1" }] });
  });

  it("refuses a string under an image key that is no image (a file path on the backend, a word)", async () => {
    for (const image of ["/srv/webui/outputs/other-tenant.png", "canny"]) {
      await expect(readPassThroughImages({ alwayson_scripts: { controlnet: { args: [{ image_path: image }] } } }, options())).rejects.toMatchObject({ status: 422, details: [{ path: "alwayson_scripts.controlnet.args.0.image_path" }] });
    }
  });

  it("refuses arguments nested past the depth it reads, too many images, and images over the total", async () => {
    let deep: unknown = "https://images.example/deep.png";
    for (let i = 0; i < MAX_IMAGE_DEPTH + 1; i++) deep = [deep];
    await expect(readPassThroughImages({ alwayson_scripts: { x: deep } }, options())).rejects.toMatchObject({ status: 422, message: expect.stringMatching(/nested deeper/) as string });
    const many = Array.from({ length: MAX_PASS_THROUGH_IMAGES + 1 }, () => ({ image: PNG_B64 }));
    await expect(readPassThroughImages({ alwayson_scripts: { controlnet: { args: many } } }, options())).rejects.toMatchObject({ status: 422, details: [{ path: "alwayson_scripts" }] });
    const two = { mask: "https://images.example/1.png", alwayson_scripts: { controlnet: { args: [{ image: "https://images.example/2.png" }] } } };
    await expect(readPassThroughImages(two, options({ maxTotalBytes: PNG.byteLength + 1 }))).rejects.toMatchObject({ status: 422, code: "image_too_large", details: [{ path: "alwayson_scripts.controlnet.args.0.image" }] });
  });
});

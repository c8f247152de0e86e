import { describe, expect, it } from "vitest";
import { EaselError } from "../../../src/errors";
import { base64ToBytes, bytesToBase64 } from "../../../src/lib/base64";
import { readImageInput } from "../../../src/lib/image-input";
import { sniffImage } from "../../../src/lib/image-sniff";

/** The smallest PNG header a sniffer needs: signature and IHDR with the size. */
function pngHeader(width: number, height: number): Uint8Array {
  const b = new Uint8Array(33);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  new DataView(b.buffer).setUint32(16, width);
  new DataView(b.buffer).setUint32(20, height);
  return b;
}
const jpegHeader = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x01, 0x40, 0x02, 0x80, 0x03]);
const webpHeader = (() => {
  const b = new Uint8Array(30);
  b.set([0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38, 0x58]);
  b.set([99, 0, 0, 49, 0, 0], 24);
  return b;
})();

const opts = { field: "init_image", allowPrivate: false, maxBytes: 1024 };
/** A whole 1x1 PNG, as base64. */
const PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

async function failure(p: Promise<unknown>): Promise<EaselError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof EaselError) return err;
    throw err;
  }
  throw new Error("expected an error");
}

describe("image sniffing", () => {
  it("tells PNG, JPEG and WebP by their bytes, with their sizes", () => {
    expect(sniffImage(pngHeader(640, 480))).toEqual({ contentType: "image/png", width: 640, height: 480 });
    expect(sniffImage(jpegHeader)).toEqual({ contentType: "image/jpeg", width: 640, height: 320 });
    expect(sniffImage(webpHeader)).toEqual({ contentType: "image/webp", width: 100, height: 50 });
  });

  it("refuses text, truncated headers and zero sizes", () => {
    expect(sniffImage(new TextEncoder().encode("<html>hello</html>"))).toBeNull();
    expect(sniffImage(pngHeader(640, 480).subarray(0, 20))).toBeNull();
    expect(sniffImage(pngHeader(0, 480))).toBeNull();
    expect(sniffImage(new Uint8Array())).toBeNull();
  });
});

describe("reading an init image", () => {
  it("takes a data URI and raw base64", async () => {
    // A whole PNG: a header alone is no image (image-check.ts).
    const b64 = PNG_1X1;
    expect((await readImageInput(`data:image/png;base64,${b64}`, opts)).width).toBe(1);
    expect((await readImageInput(b64, opts)).contentType).toBe("image/png");
    expect(await failure(readImageInput(bytesToBase64(pngHeader(64, 64)), opts))).toMatchObject({ status: 422, code: "invalid_image", details: [{ path: "init_image" }] });
  });

  it("names the field when the bytes are not an image or not base64", async () => {
    const notImage = await failure(readImageInput(btoa("just some text"), opts));
    expect(notImage).toMatchObject({ status: 422, code: "invalid_image", details: [{ path: "init_image" }] });
    expect(await failure(readImageInput("%%%", opts))).toMatchObject({ status: 422, details: [{ path: "init_image" }] });
  });

  it("stops reading a streamed body as soon as it passes the cap, with or without Content-Length", async () => {
    let pulled = 0;
    const endless: typeof fetch = async () =>
      new Response(
        new ReadableStream({
          pull(controller) {
            pulled++;
            controller.enqueue(new Uint8Array(512));
            if (pulled > 1000) controller.close();
          },
        }),
      );
    expect(await failure(readImageInput("https://images.example.com/big.png", { ...opts, fetcher: endless }))).toMatchObject({ code: "image_too_large" });
    expect(pulled).toBeLessThan(10);
    const declared: typeof fetch = async () => new Response("x", { headers: { "content-length": "999999" } });
    expect(await failure(readImageInput("https://images.example.com/big.png", { ...opts, fetcher: declared }))).toMatchObject({ code: "image_too_large" });
  });

  it("re-checks every redirect and refuses one that points at a private address", async () => {
    const seen: string[] = [];
    const redirecting: typeof fetch = async (input) => {
      seen.push(String(input));
      return new Response(null, { status: 302, headers: { location: "http://169.254.169.254/latest/meta-data" } });
    };
    const err = await failure(readImageInput("https://images.example.com/cat.png", { ...opts, fetcher: redirecting }));
    expect(err).toMatchObject({ status: 422, code: "invalid_url" });
    expect(seen).toEqual(["https://images.example.com/cat.png"]);
  });

  it("follows a public redirect and reports an upstream error status", async () => {
    const png = base64ToBytes(PNG_1X1) ?? new Uint8Array();
    const hops: typeof fetch = async (input) =>
      String(input).endsWith("/a") ? new Response(null, { status: 301, headers: { location: "/b" } }) : new Response(png, { status: 200 });
    expect((await readImageInput("https://images.example.com/a", { ...opts, fetcher: hops })).width).toBe(1);
    const missing: typeof fetch = async () => new Response("no", { status: 404 });
    expect(await failure(readImageInput("https://images.example.com/x.png", { ...opts, fetcher: missing }))).toMatchObject({ code: "image_fetch_failed", message: expect.stringContaining("404") });
  });
});

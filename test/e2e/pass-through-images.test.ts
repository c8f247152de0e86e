/**
 * Images an A1111 request carries outside `init_images` (img2img's `mask`, ControlNet units in
 * `alwayson_scripts`) are read by the gateway as init images are, before the backend sees them:
 * A1111 itself would fetch any http(s) string there (modules/api/api.py `decode_base64_to_image`).
 * Two gateways share one recording stand-in A1111, which also serves an image: one with
 * ALLOW_PRIVATE_URLS=false (the URL rules of section 6), one with it true (a loopback URL is allowed).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { startGateway } from "./support/processes";

const KEY = "sk_alice";
const OUTPUT = Buffer.from(encodePng(64, 64, (x, y) => [x * 4, y * 4, 200])).toString("base64");
const MASK = Buffer.from(encodePng(64, 64, (x) => (x < 32 ? [0, 0, 0] : [255, 255, 255])));
const MASK_B64 = MASK.toString("base64");
/** A 8x8 PNG whose header says 20000x20000: 400 megapixels, over Pillow's limit, in a few hundred bytes. */
const BOMB = (() => {
  const b = Buffer.from(encodePng(8, 8, () => [9, 9, 9]));
  b.writeUInt32BE(20_000, 16);
  b.writeUInt32BE(20_000, 20);
  return b;
})();

/** What the stand-in A1111 was asked to generate, and how often its image was fetched. */
const received: Record<string, unknown>[] = [];
let imageFetches = 0;
let server: Server;
let imageUrl: string;
let strict: Awaited<ReturnType<typeof startGateway>>;
let open: Awaited<ReturnType<typeof startGateway>>;
const dirs: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = req.url ?? "";
      if (url.startsWith("/img/")) {
        imageFetches++;
        res.setHeader("content-type", "image/png");
        res.end(url === "/img/bomb.png" ? BOMB : MASK);
        return;
      }
      res.setHeader("content-type", "application/json");
      if (/^\/sdapi\/v1\/(txt2img|img2img)/.test(url)) {
        received.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>);
        res.end(JSON.stringify({ images: [OUTPUT], parameters: {}, info: JSON.stringify({ seed: 1, all_seeds: [1], index_of_first_image: 0 }) }));
      } else if (url.startsWith("/internal/progress")) res.end(JSON.stringify({ active: false, queued: false, completed: true, progress: 1 }));
      else if (url.startsWith("/sdapi/v1/sd-models")) res.end(JSON.stringify([{ title: "m.safetensors [0123456789]", model_name: "m" }]));
      else res.end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  imageUrl = `${base}/img/mask.png`;
  const gateway = (allowPrivate: boolean) => {
    const dir = mkdtempSync(join(tmpdir(), "easel-e2e-pass-through-images-"));
    dirs.push(dir);
    return startGateway({
      persistDir: dir,
      vars: {
        TENANTS: JSON.stringify({ alice: { api_keys: [KEY], webhook_secrets: [] } }),
        BACKENDS: JSON.stringify([{ name: "a", kind: "a1111", url: base }]),
        ALLOW_PRIVATE_URLS: String(allowPrivate),
        URL_SIGNING_SECRET: "e2e",
      },
    });
  };
  [strict, open] = await Promise.all([gateway(false), gateway(true)]);
});

afterAll(async () => {
  await Promise.all([strict?.stop(), open?.stop()]);
  server?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const post = (gw: { url: string }, path: string, body: unknown) =>
  fetch(`${gw.url}/sdapi/v1/${path}`, { method: "POST", headers: { authorization: `Basic ${Buffer.from(`u:${KEY}`).toString("base64")}`, "content-type": "application/json" }, body: JSON.stringify(body) });
const img2img = (over: Record<string, unknown>) => ({ prompt: "x", steps: 1, width: 64, height: 64, init_images: [OUTPUT], ...over });
const txt2img = (over: Record<string, unknown>) => ({ prompt: "x", steps: 1, width: 64, height: 64, ...over });
const controlnet = (...args: unknown[]) => ({ alwayson_scripts: { controlnet: { args } } });
type Refusal = { detail: { loc: string[]; msg: string }[] };

/** The request is a 422 naming `field` (FastAPI's shape, as the A1111 dialect answers), and nothing reached the backend. */
async function refused(sending: Promise<Response>, field: string, msg: RegExp): Promise<void> {
  const before = received.length;
  const res = await sending;
  const body = (await res.json()) as Refusal;
  expect(res.status, JSON.stringify(body).slice(0, 300)).toBe(422);
  expect(body.detail[0]?.loc).toEqual(["body", ...field.split(".")]);
  expect(body.detail[0]?.msg).toMatch(msg);
  expect(received.length).toBe(before);
}

describe("image URLs in an A1111 request's pass-through fields, with ALLOW_PRIVATE_URLS=false", () => {
  it("refuses a metadata URL in img2img's mask with a 422 naming mask; the backend gets no request", async () => {
    const before = received.length;
    await refused(post(strict, "img2img", img2img({ mask: "http://169.254.169.254/latest/meta-data/iam" })), "mask", /https|private|metadata|link-local/i);
    await refused(post(strict, "img2img", img2img({ mask: "https://[::ffff:169.254.169.254]/latest/meta-data/" })), "mask", /private|metadata|link-local/i);
    expect(received.length).toBe(before);
  });

  it("refuses a private URL in a ControlNet unit (image, input_image, mask_image, and the {image, mask} form), naming the field; nothing is fetched", async () => {
    const before = received.length;
    await refused(post(strict, "txt2img", txt2img(controlnet({ module: "canny", image: "http://10.0.0.5/internal.png" }))), "alwayson_scripts.controlnet.args.0.image", /https|private/i);
    await refused(post(strict, "txt2img", txt2img(controlnet({ enabled: false }, { input_image: "https://10.0.0.5/x.png" }))), "alwayson_scripts.controlnet.args.1.input_image", /private/i);
    await refused(post(strict, "img2img", img2img(controlnet({ mask_image: "https://localhost/x.png" }))), "alwayson_scripts.controlnet.args.0.mask_image", /private|loopback/i);
    // The stand-in's own image, reachable on loopback: refused before it is asked.
    await refused(post(strict, "txt2img", txt2img(controlnet({ image: { image: MASK_B64, mask: imageUrl } }))), "alwayson_scripts.controlnet.args.0.image.mask", /https|private/i);
    // A URL under any other name in a script's arguments is an image reference too.
    await refused(post(strict, "txt2img", txt2img({ alwayson_scripts: { reactor: { args: ["https://169.254.169.254/", true] } } })), "alwayson_scripts.reactor.args.0", /private|metadata|link-local/i);
    expect(imageFetches).toBe(0);
    expect(received.length).toBe(before);
  });

  it("sends a data URI mask to the backend as the base64 of its image", async () => {
    const res = await post(strict, "img2img", img2img({ mask: `data:image/png;base64,${MASK_B64}` }));
    expect(res.status, await res.clone().text()).toBe(200);
    expect(received.at(-1)?.mask).toBe(MASK_B64);
  });

  it("refuses a mask over the pixel limit, as a data URI or raw base64, naming mask", async () => {
    await refused(post(strict, "img2img", img2img({ mask: `data:image/png;base64,${BOMB.toString("base64")}` })), "mask", /20000x20000 is over \d+ pixels/);
    await refused(post(strict, "img2img", img2img({ mask: BOMB.toString("base64") })), "mask", /20000x20000 is over \d+ pixels/);
    await refused(post(strict, "txt2img", txt2img(controlnet({ image: { image: BOMB.toString("base64"), mask: null } }))), "alwayson_scripts.controlnet.args.0.image.image", /over \d+ pixels/);
  });
});

describe("image URLs in an A1111 request's pass-through fields, where the URL is allowed", () => {
  it("fetches a mask URL and a ControlNet unit's images itself and sends the backend their base64; the other arguments go as sent", async () => {
    imageFetches = 0;
    const res = await post(open, "img2img", img2img({ mask: imageUrl, ...controlnet({ module: "canny", model: "control_v11p_sd15_canny", image: imageUrl, weight: 1 }, { image: { image: imageUrl, mask: `data:image/png;base64,${MASK_B64}` } }) }));
    expect(res.status, await res.clone().text()).toBe(200);
    expect(imageFetches).toBe(3);
    const sent = received.at(-1) ?? {};
    expect(sent.mask).toBe(MASK_B64);
    expect(sent.alwayson_scripts).toEqual(controlnet({ module: "canny", model: "control_v11p_sd15_canny", image: MASK_B64, weight: 1 }, { image: { image: MASK_B64, mask: MASK_B64 } }).alwayson_scripts);
  });

  it("refuses a fetched image over the pixel limit, naming its field; the backend gets no request", async () => {
    await refused(post(open, "img2img", img2img({ mask: imageUrl.replace("mask.png", "bomb.png") })), "mask", /20000x20000 is over \d+ pixels/);
    await refused(post(open, "txt2img", txt2img(controlnet({ image: imageUrl.replace("mask.png", "bomb.png") }))), "alwayson_scripts.controlnet.args.0.image", /over \d+ pixels/);
  });
});

/** A1111's `extra-single-image`: the input PNG really enlarged (nearest neighbour), as a new PNG. */
import { createHash } from "node:crypto";
import { inflateSync } from "node:zlib";
import { errorEnvelope, type Reply } from "./a1111";
import { encodePng } from "./png";
import type { Kind, SimState } from "./state";

type Rgb = [number, number, number];
interface Decoded {
  width: number;
  height: number;
  pixel(x: number, y: number): Rgb;
}

const paeth = (a: number, b: number, c: number): number => {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
};

/** Decodes an 8-bit, non-interlaced PNG (grey, RGB, palette, with or without alpha); undefined otherwise. */
export function decodePng(buf: Buffer): Decoded | undefined {
  if (buf.length < 33 || buf.readUInt32BE(0) !== 0x89504e47) return undefined;
  let width = 0;
  let height = 0;
  let colorType = 0;
  let palette: Buffer | undefined;
  const idat: Buffer[] = [];
  for (let at = 8; at + 8 <= buf.length; ) {
    const len = buf.readUInt32BE(at);
    const type = buf.toString("ascii", at + 4, at + 8);
    const data = buf.subarray(at + 8, at + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) return undefined;
      colorType = data[9] ?? 0;
    } else if (type === "PLTE") palette = data;
    else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    at += 12 + len;
  }
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType];
  if (!channels || !width || !height) return undefined;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)] ?? 0;
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i] ?? 0;
      const a = i >= channels ? (out[y * stride + i - channels] ?? 0) : 0;
      const b = y > 0 ? (out[(y - 1) * stride + i] ?? 0) : 0;
      const c = y > 0 && i >= channels ? (out[(y - 1) * stride + i - channels] ?? 0) : 0;
      const pred = filter === 1 ? a : filter === 2 ? b : filter === 3 ? (a + b) >> 1 : filter === 4 ? paeth(a, b, c) : 0;
      out[y * stride + i] = (x + pred) & 255;
    }
  }
  return {
    width,
    height,
    pixel: (x, y) => {
      const o = y * stride + x * channels;
      if (colorType === 3) {
        const p = (out[o] ?? 0) * 3;
        return [palette?.[p] ?? 0, palette?.[p + 1] ?? 0, palette?.[p + 2] ?? 0];
      }
      if (channels <= 2) return [out[o] ?? 0, out[o] ?? 0, out[o] ?? 0];
      return [out[o] ?? 0, out[o + 1] ?? 0, out[o + 2] ?? 0];
    },
  };
}

/** A JPEG's or WebP's size is not read here: those come out as a flat colour of the asked size. */
function flat(bytes: Buffer): Decoded {
  const [r = 0, g = 0, b = 0] = createHash("sha256").update(bytes).digest();
  return { width: 512, height: 512, pixel: () => [r, g, b] };
}

const num = (v: unknown, fallback: number): number => (typeof v === "number" && Number.isFinite(v) ? v : fallback);

/** `POST /sdapi/v1/extra-single-image` (and RunPod's `api_name: "extra-single-image"`). */
export function extraSingleImage(state: SimState, kind: Kind, payload: Record<string, unknown>): Reply {
  const faults = state.faults(kind);
  if (faults.down) return "down";
  if (faults.hang) return "hang";
  if (Math.random() < faults.errorRate) return { status: 500, body: errorEnvelope("RuntimeError", "simulated backend failure") };
  const b64 = typeof payload.image === "string" ? payload.image.replace(/^data:[^,]*,/, "") : "";
  const bytes = Buffer.from(b64, "base64");
  if (!bytes.length) return { status: 422, body: { detail: [{ loc: ["body", "image"], msg: "field required", type: "value_error.missing" }] } };
  const src = decodePng(bytes) ?? flat(bytes);
  const byScale = num(payload.resize_mode, 0) === 0;
  const scale = num(payload.upscaling_resize, 2);
  const width = byScale ? Math.round(src.width * scale) : num(payload.upscaling_resize_w, 512);
  const height = byScale ? Math.round(src.height * scale) : num(payload.upscaling_resize_h, 512);
  if (width < 1 || height < 1 || width > 8192 || height > 8192) return { status: 500, body: errorEnvelope("ValueError", `bad target size ${width}x${height}`) };
  const end = state.begin(kind);
  const png = encodePng(width, height, (x, y) => src.pixel(Math.min(src.width - 1, Math.floor((x * src.width) / width)), Math.min(src.height - 1, Math.floor((y * src.height) / height))));
  end();
  const upscaler = typeof payload.upscaler_1 === "string" ? payload.upscaler_1 : "None";
  return { status: 200, body: { html_info: `<p>Postprocess upscale to: ${width}x${height}, upscaler: ${upscaler}</p>`, image: Buffer.from(png).toString("base64") } };
}

/**
 * The images a simulated ComfyUI graph passes between nodes: a size and a pixel function, made into
 * a PNG only when a node saves it. A sampled picture is a gradient drawn from everything the sampler
 * was asked (prompt, seed, checkpoint, ...), blended with its source image by `1 - denoise`.
 */
import { createHash } from "node:crypto";
import { encodePng } from "./png";
import { decodePng } from "./upscale";

type Rgb = [number, number, number];
export interface Picture {
  width: number;
  height: number;
  pixel(x: number, y: number): Rgb;
}

/** An uploaded image as LoadImage reads it; undefined when it is not a PNG the simulator can decode. */
export function loadPicture(bytes: Buffer): Picture | undefined {
  const d = decodePng(bytes);
  return d ? { width: d.width, height: d.height, pixel: (x, y) => d.pixel(x, y) } : undefined;
}

/** A decoded empty latent: mid grey. */
export const blank = (width: number, height: number): Picture => ({ width, height, pixel: () => [128, 128, 128] });

/** Nearest-neighbour resize: the source's pixels, enlarged or shrunk to `width` x `height`. */
export function resize(src: Picture, width: number, height: number): Picture {
  const w = Math.max(1, Math.round(width));
  const h = Math.max(1, Math.round(height));
  return { width: w, height: h, pixel: (x, y) => src.pixel(Math.min(src.width - 1, Math.floor((x * src.width) / w)), Math.min(src.height - 1, Math.floor((y * src.height) / h))) };
}

/** What one sample of a sampler depends on: the same description always draws the same picture. */
export function sampled(description: string, width: number, height: number, source: Picture | undefined, denoise: number): Picture {
  const [r0 = 0, g0 = 0, b0 = 0, r1 = 0, g1 = 0, b1 = 0] = createHash("sha256").update(description).digest();
  const keep = source ? Math.min(1, Math.max(0, 1 - denoise)) : 0;
  const base = source ? resize(source, width, height) : undefined;
  return {
    width,
    height,
    pixel: (x, y) => {
      const t = (x + y) / Math.max(1, width + height - 2);
      const fresh: Rgb = [Math.round(r0 + (r1 - r0) * t) & 255, Math.round(g0 + (g1 - g0) * t) & 255, Math.round(b0 + (b1 - b0) * t) & 255];
      if (!base) return fresh;
      const old = base.pixel(x, y);
      const mix = (a: number, b: number) => Math.round(a * keep + b * (1 - keep));
      return [mix(old[0], fresh[0]), mix(old[1], fresh[1]), mix(old[2], fresh[2])];
    },
  };
}

/** The PNG SaveImage writes, with the graph in its `prompt` text chunk (and each `extra_pnginfo` entry) as ComfyUI does. */
export function toPng(p: Picture, text: Record<string, string>): Buffer {
  return Buffer.from(encodePng(p.width, p.height, (x, y) => p.pixel(x, y), text));
}

/**
 * An img2img job's output size when its API takes it from the init image rather than from the
 * request: ModelsLab makes the image's own size, Cerebrium's sd-img-2-img fits the image in its
 * `width` x `height` box (PIL's `ImageOps.contain`). Either way the result is in multiples of 8, the
 * latent grid of Stable Diffusion's VAE, and within a generation's limits (64–2048 px a side).
 */
import { MAX_GENERATED_SIDE } from "../schemas/job";

const MIN_SIDE = 64;
const GRID = 8;

export interface Size {
  width: number;
  height: number;
}

/** `own`: the image's size (ModelsLab); `contain`: the image fitted in the box, its aspect kept (Cerebrium). */
export type SizeFromImage = { rule: "own" } | ({ rule: "contain" } & Size);

/** Python's `round()`: a half goes to the even neighbour, as PIL computes `contain`'s side. */
function pyRound(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  return rest > 0.5 || (rest === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
}

/** PIL's `ImageOps.contain(image, box)`: the largest size of the image's aspect that fits the box (larger or smaller). */
export function contain(source: Size, box: Size): Size {
  const imageRatio = source.width / source.height;
  const boxRatio = box.width / box.height;
  if (imageRatio === boxRatio) return { ...box };
  return imageRatio > boxRatio
    ? { width: box.width, height: pyRound((source.height / source.width) * box.width) }
    : { width: pyRound((source.width / source.height) * box.height), height: box.height };
}

/**
 * Scaled (aspect kept) until both sides are within 64–2048, then each side on the 8 px grid:
 * `nearest` keeps the aspect best (ModelsLab does not say how it rounds); `down` is what diffusers'
 * image processor does to the contained image (`x - x % 8`), so Cerebrium's output is that size.
 */
export function withinLimits(size: Size, snap: "nearest" | "down"): Size {
  let scale = Math.min(1, MAX_GENERATED_SIDE / Math.max(size.width, size.height));
  // A very thin image that cannot keep its aspect within both limits gets its short side to 64 px, the long one held at 2048.
  scale = Math.max(scale, MIN_SIDE / Math.min(size.width, size.height));
  const side = (v: number) => {
    const snapped = snap === "down" ? Math.floor((v * scale) / GRID) * GRID : Math.round((v * scale) / GRID) * GRID;
    return Math.min(MAX_GENERATED_SIDE, Math.max(MIN_SIDE, snapped));
  };
  return { width: side(size.width), height: side(size.height) };
}

/** The output size of an img2img whose init image is `source`, by its API's rule. */
export function sizeFromImage(source: Size, rule: SizeFromImage): Size {
  return rule.rule === "own" ? withinLimits(source, "nearest") : withinLimits(contain(source, rule), "down");
}

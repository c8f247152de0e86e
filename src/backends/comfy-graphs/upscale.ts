/**
 * An upscale job as a ComfyUI graph: the uploaded image scaled to the job's exact size (worked out
 * at intake), by a plain resampling method, or by an upscale model the backend has and then to the
 * exact size (a model scales by its own factor). Cropped to the size, as A1111's extras crop.
 */
import { GraphBuilder, out, type BuiltGraph } from "./graph";

/** ImageScale's methods, by the names A1111 and ComfyUI give them. */
const METHODS: Record<string, string> = {
  lanczos: "lanczos",
  nearest: "nearest-exact",
  "nearest-exact": "nearest-exact",
  bilinear: "bilinear",
  bicubic: "bicubic",
  area: "area",
  // A1111's "None" upscaler still resizes; Lanczos is its plain one.
  none: "lanczos",
};

const modelKey = (name: string) => name.trim().toLowerCase().replace(/\.(pth|pt|safetensors|bin|ckpt)$/, "");

/**
 * How an `upscaler` name runs on this backend: a resampling method, one of its upscale models (its
 * exact file name), or undefined when it has neither (another backend may).
 */
export function upscalerFor(upscaler: string | undefined, models: readonly string[]): { method: string } | { model: string } | undefined {
  if (upscaler === undefined) return { method: "lanczos" };
  const method = METHODS[upscaler.trim().toLowerCase()];
  if (method) return { method };
  const model = models.find((m) => modelKey(m) === modelKey(upscaler));
  return model ? { model } : undefined;
}

export function upscaleGraph(inputs: { image: string; width: number; height: number; upscaler: { method: string } | { model: string }; filenamePrefix: string }): BuiltGraph {
  const g = new GraphBuilder();
  let image = out(g.add("LoadImage", { image: inputs.image }));
  if ("model" in inputs.upscaler) {
    const loader = g.add("UpscaleModelLoader", { model_name: inputs.upscaler.model });
    image = out(g.add("ImageUpscaleWithModel", { upscale_model: out(loader), image }));
  }
  const method = "method" in inputs.upscaler ? inputs.upscaler.method : "lanczos";
  const sized = g.add("ImageScale", { image, upscale_method: method, width: inputs.width, height: inputs.height, crop: "center" });
  const save = g.add("SaveImage", { images: out(sized), filename_prefix: inputs.filenamePrefix });
  return { prompt: g.prompt, samplers: [], saves: [save] };
}

/**
 * What each simulated ComfyUI node does with its inputs: loaders hand on names, samplers draw
 * pictures (see comfyui-pictures.ts), savers write PNGs. Sampling time and progress are the
 * executor's; a node only says how many steps and samples it runs.
 */
import { randomBytes } from "node:crypto";
import type { ComfyFiles, Dir } from "./comfyui-files";
import { UPSCALE_MODELS } from "./comfyui-nodes";
import { blank, loadPicture, resize, sampled, toPng, type Picture } from "./comfyui-pictures";

export interface Latent {
  width: number;
  height: number;
  /** One per batch element: a picture to start from (VAEEncode, an earlier sampler) or none (empty latent). */
  samples: (Picture | undefined)[];
}
export type ImageRef = { filename: string; subfolder: string; type: Dir };

/** A node's failure, as ComfyUI reports an exception raised while it ran. */
export class NodeFailure extends Error {
  constructor(
    readonly exceptionType: string,
    message: string,
  ) {
    super(message);
  }
}

export interface NodeRun {
  files: ComfyFiles;
  graph: unknown;
  extraPngInfo: Record<string, unknown>;
  /** Runs `steps` sampling steps for `samples` images, reporting progress; rejects when interrupted. */
  sample(steps: number, samples: number): Promise<void>;
  /** A progress bar's image, as `ProgressBar.update_absolute(value, max, ("PNG", image, None))` sends it. */
  stream(value: number, max: number, png: Uint8Array): void;
}

type Inputs = Record<string, unknown>;
type Outputs = { values: unknown[]; ui?: { images: ImageRef[] } };

const num = (v: unknown, fallback = 0) => (typeof v === "number" && Number.isFinite(v) ? v : fallback);
/** VAEs work on 8-pixel blocks: sizes come back rounded down to a multiple of 8. */
const block = (n: number) => Math.max(8, Math.floor(n / 8) * 8);

function save(run: NodeRun, dir: Dir, prefix: string, images: Picture[]): Outputs {
  const text: Record<string, string> = { prompt: JSON.stringify(run.graph) };
  for (const [k, v] of Object.entries(run.extraPngInfo)) text[k] = JSON.stringify(v);
  return { values: [], ui: { images: run.files.save(dir, prefix, images.map((p) => toPng(p, text))) } };
}

async function ksample(run: NodeRun, i: Inputs, seedName: string, denoise: number, steps: number): Promise<Outputs> {
  const latent = i.latent_image as Latent;
  await run.sample(steps, latent.samples.length);
  const model = i.model as { ckpt: string };
  const seed = num(i[seedName]);
  const what = { ckpt: model.ckpt, positive: (i.positive as { text: string }).text, negative: (i.negative as { text: string }).text, seed, steps: num(i.steps), cfg: num(i.cfg), sampler: i.sampler_name, scheduler: i.scheduler, denoise };
  // A batch draws all its noise from one seed: element n differs by its place in the batch.
  const samples = latent.samples.map((src, n) => sampled(JSON.stringify({ ...what, batch_index: n }), latent.width, latent.height, src, denoise));
  return { values: [{ ...latent, samples }] };
}

export const RUN: Record<string, (run: NodeRun, i: Inputs) => Promise<Outputs> | Outputs> = {
  CheckpointLoaderSimple: (_r, i) => {
    const m = { ckpt: String(i.ckpt_name) };
    return { values: [m, m, m] };
  },
  CLIPTextEncode: (_r, i) => ({ values: [{ text: String(i.text) }] }),
  EmptyLatentImage: (_r, i) => ({ values: [{ width: block(num(i.width, 512)), height: block(num(i.height, 512)), samples: Array.from({ length: num(i.batch_size, 1) }, () => undefined) } satisfies Latent] }),
  KSampler: (r, i) => ksample(r, i, "seed", num(i.denoise, 1), num(i.steps, 20)),
  KSamplerAdvanced: (r, i) => {
    const steps = num(i.steps, 20);
    const start = Math.min(steps, num(i.start_at_step));
    const end = Math.min(steps, num(i.end_at_step, 10000));
    return ksample(r, i, "noise_seed", 1 - start / Math.max(1, steps), Math.max(0, end - start));
  },
  VAEDecode: (_r, i) => {
    const l = i.samples as Latent;
    return { values: [l.samples.map((p) => p ?? blank(l.width, l.height))] };
  },
  VAEEncode: (_r, i) => {
    const images = i.pixels as Picture[];
    const first = images[0] ?? blank(8, 8);
    const width = block(first.width);
    const height = block(first.height);
    return { values: [{ width, height, samples: images.map((p) => resize(p, width, height)) } satisfies Latent] };
  },
  LoadImage: (r, i) => {
    const name = String(i.image);
    const bytes = r.files.resolve(name);
    if (!bytes) throw new NodeFailure("FileNotFoundError", `[Errno 2] No such file or directory: '/comfyui/input/${name}'`);
    const p = loadPicture(bytes);
    if (!p) throw new NodeFailure("PIL.UnidentifiedImageError", `cannot identify image file '/comfyui/input/${name}'`);
    return { values: [[p], {}] };
  },
  SaveImage: (r, i) => save(r, "output", String(i.filename_prefix ?? "ComfyUI"), i.images as Picture[]),
  // Without metadata, one frame per image, its step counted from 0 as the node's loop does.
  SaveImageWebsocket: (r, i) => {
    const images = i.images as Picture[];
    images.forEach((p, n) => r.stream(n, images.length, toPng(p, {})));
    return { values: [] };
  },
  // PreviewImage is SaveImage into temp, its prefix made unique per node run.
  PreviewImage: (r, i) => save(r, "temp", `ComfyUI_temp_${[...randomBytes(5)].map((b) => "abcdefghijklmnopqrstupvxyz"[b % 26]).join("")}`, i.images as Picture[]),
  ImageScale: (_r, i) => {
    return {
      values: [
        (i.image as Picture[]).map((p) => {
          let w = num(i.width);
          let h = num(i.height);
          if (w === 0 && h === 0) return p;
          if (w === 0) w = Math.max(1, Math.round((p.width * h) / p.height));
          if (h === 0) h = Math.max(1, Math.round((p.height * w) / p.width));
          return resize(p, w, h);
        }),
      ],
    };
  },
  ImageScaleBy: (_r, i) => ({ values: [(i.image as Picture[]).map((p) => resize(p, p.width * num(i.scale_by, 1), p.height * num(i.scale_by, 1)))] }),
  UpscaleModelLoader: (_r, i) => ({ values: [{ name: String(i.model_name), scale: UPSCALE_MODELS[String(i.model_name)] ?? 4 }] }),
  ImageUpscaleWithModel: (_r, i) => {
    const scale = (i.upscale_model as { scale: number }).scale;
    return { values: [(i.image as Picture[]).map((p) => resize(p, p.width * scale, p.height * scale))] };
  },
  LatentUpscaleBy: (_r, i) => {
    const l = i.samples as Latent;
    const s = num(i.scale_by, 1.5);
    const width = Math.max(8, Math.round((l.width / 8) * s) * 8);
    const height = Math.max(8, Math.round((l.height / 8) * s) * 8);
    return { values: [{ width, height, samples: l.samples.map((p) => (p ? resize(p, width, height) : undefined)) } satisfies Latent] };
  },
};

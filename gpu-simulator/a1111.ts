/** The AUTOMATIC1111 web API, as far as Easel and the seeds use it. */
import { randomInt } from "node:crypto";
import { newTaskId } from "./a1111-tasks";
import { generateImages } from "./generate";
import type { Kind, SimState } from "./state";

export const MODELS = [
  {
    title: "v1-5-pruned-emaonly.safetensors [6ce0161689]",
    model_name: "v1-5-pruned-emaonly",
    hash: "6ce0161689",
    sha256: "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
    filename: "/stable-diffusion-webui/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors",
    config: null,
  },
  {
    title: "chilloutmix-Ni.safetensors [7234b76e42]",
    model_name: "chilloutmix-Ni",
    hash: "7234b76e42",
    sha256: "7234b76e423f010b409268386062a4111c0da6adebdf3a9b1a825937bdf17683",
    filename: "/stable-diffusion-webui/models/Stable-diffusion/chilloutmix-Ni.safetensors",
    config: null,
  },
];

/** `GET /sdapi/v1/scripts`: the selectable scripts per API, as `script_name` names them (lower case). */
export const SCRIPTS = {
  txt2img: ["prompt matrix", "prompts from file or textbox", "x/y/z plot", "extra options", "refiner", "seed", "sampler"],
  img2img: ["img2img alternative test", "loopback", "outpainting mk2", "poor man's outpainting", "prompt matrix", "prompts from file or textbox", "sd upscale", "x/y/z plot", "extra options", "refiner", "seed", "sampler"],
};
export const SAMPLERS = ["Euler a", "Euler", "DPM++ 2M Karras", "DPM++ SDE Karras", "DDIM"].map((name) => ({ name, aliases: [], options: {} }));

const key = (name: string) =>
  name
    .trim()
    .replace(/\s*\[[0-9a-f]+\]$/i, "")
    .replace(/\.(safetensors|ckpt)$/i, "")
    .toLowerCase();

/** A1111 finds a checkpoint by title or model name, with or without extension and hash. */
export const findModel = (name: string) => MODELS.find((m) => key(m.title) === key(name) || key(m.model_name) === key(name));

/**
 * A request's `override_settings.sd_model_checkpoint` as A1111's processing reads it: only by one of
 * the checkpoint's exact aliases (`sd_models.checkpoint_aliases`: title, model name, file name,
 * hash, `name [hash]`); any other spelling is dropped, and the loaded checkpoint generates.
 */
const byAlias = (name: string) =>
  MODELS.find((m) => {
    const file = m.filename.split("/").at(-1) ?? "";
    return [m.title, m.model_name, file, m.hash, m.sha256, `${file} [${m.hash}]`].includes(name);
  });

export const errorEnvelope = (error: string, errors: string) => ({ error, detail: "", body: "", errors });

export type Reply = { status: number; body: unknown; bodyDelayMs?: number } | "down" | "hang";

/** Generations in flight that an interrupt (A1111) or a cancel (RunPod) can cut short. */
export class Running {
  private readonly stops = new Map<number, () => void>();
  private next = 0;

  add(stop: () => void): () => boolean {
    const id = this.next++;
    this.stops.set(id, stop);
    return () => this.stops.delete(id);
  }

  stopAll(): void {
    for (const stop of this.stops.values()) stop();
  }
}

const num = (v: unknown, fallback: number): number => (typeof v === "number" && Number.isFinite(v) ? v : fallback);

/** A1111's infotext: the prompt, the negative prompt, then the parameters line. */
function infotextOf(p: { prompt: string; negative: string; steps: number; sampler: string; cfg: number; seed: number; width: number; height: number; model: (typeof MODELS)[number]; denoising?: number }): string {
  const params = [
    `Steps: ${p.steps}`,
    `Sampler: ${p.sampler}`,
    "Schedule type: Automatic",
    `CFG scale: ${p.cfg}`,
    `Seed: ${p.seed}`,
    `Size: ${p.width}x${p.height}`,
    `Model hash: ${p.model.hash}`,
    `Model: ${p.model.model_name}`,
    ...(p.denoising !== undefined ? [`Denoising strength: ${p.denoising}`] : []),
    "Version: v1.10.1",
  ].join(", ");
  return [p.prompt, ...(p.negative ? [`Negative prompt: ${p.negative}`] : []), params].join("\n");
}

/**
 * Runs one txt2img/img2img call with the faults configured for `kind`. An interrupt (A1111's, or a
 * cancel through `running`) ends it early with the images finished so far; on A1111 its progress is tracked
 * under its `force_task_id`, and with `serial` it waits for A1111's one-at-a-time lock.
 */
export async function generate(state: SimState, kind: Kind, api: "txt2img" | "img2img", payload: Record<string, unknown>, running?: Running): Promise<Reply> {
  const faults = state.faults(kind);
  if (faults.down) return "down";
  if (faults.hang) return "hang";
  const override = (payload.override_settings ?? {}) as Record<string, unknown>;
  const wanted = typeof override.sd_model_checkpoint === "string" ? override.sd_model_checkpoint : undefined;
  const asked = wanted ? byAlias(wanted) : undefined;
  if (wanted && !asked && faults.unknownModelFails) return { status: 500, body: errorEnvelope("RuntimeError", `model ${wanted} not found`) };
  const model = asked ?? findModel(state.checkpoint);
  if (!model) return { status: 500, body: errorEnvelope("RuntimeError", `model ${state.checkpoint} not found`) };
  if (Math.random() < faults.errorRate) return { status: 500, body: errorEnvelope("RuntimeError", "simulated backend failure") };
  if (Math.random() < faults.oomRate) return { status: 500, body: errorEnvelope("OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.69 GiB total capacity)") };

  const count = Math.max(1, num(payload.batch_size, 1)) * Math.max(1, num(payload.n_iter, 1));
  const seed = num(payload.seed, -1) === -1 ? randomInt(0, 2 ** 32 - 1) : num(payload.seed, 0);
  const width = num(payload.width, 512);
  const height = num(payload.height, 512);
  const initB64 = Array.isArray(payload.init_images) && typeof payload.init_images[0] === "string" ? payload.init_images[0].replace(/^data:[^,]*,/, "") : undefined;
  const init = initB64 ? Buffer.from(initB64, "base64") : undefined;
  if (api === "img2img" && !init) return { status: 422, body: { detail: [{ loc: ["body", "init_images"], msg: "field required", type: "value_error.missing" }] } };
  // api.py's script_name_to_index: a script A1111 does not have is the request's fault, a 422.
  const script = typeof payload.script_name === "string" && payload.script_name ? payload.script_name : undefined;
  if (script && kind === "a1111" && !SCRIPTS[api].includes(script.toLowerCase())) return { status: 422, body: { detail: `Script '${script}' not found` } };

  // What a request may leave behind on a real A1111: a switched checkpoint, files on its disk.
  if (payload.override_settings_restore_afterwards === false && wanted) state.checkpoint = model.title;
  if (payload.save_images === true) state.stats.filesWritten++;
  const batchSize = Math.max(1, num(payload.batch_size, 1));
  const nIter = Math.max(1, num(payload.n_iter, 1));
  const steps = num(payload.steps, 20);
  const taskId = typeof payload.force_task_id === "string" && payload.force_task_id ? payload.force_task_id : newTaskId();
  // Only A1111 itself keeps tasks (and, when serial, its one-at-a-time lock).
  const tasks = kind === "a1111" ? state.tasks : undefined;
  if (tasks) state.stats.byTask[taskId] = (state.stats.byTask[taskId] ?? 0) + 1;
  const release = tasks ? await tasks.admit(taskId, faults.serial) : () => undefined;
  const end = state.begin(kind, typeof payload.prompt === "string" ? payload.prompt : "");
  const started = Date.now();
  let interrupted = false;
  let skipBatch = () => undefined as unknown;
  const stop = () => {
    interrupted = true;
    skipBatch();
  };
  const gen = tasks?.start({ taskId, job: `scripts_${api}`, jobCount: nIter, batchMs: faults.msPerImage * batchSize, steps, seed, skip: () => skipBatch(), interrupt: stop });
  // A1111's own generations are stopped through its tasks (interrupt); the others by their job's cancel.
  const remove = running?.add(stop);
  // Batch by batch, as A1111 runs n_iter jobs of batch_size images: skip ends one, interrupt all.
  for (let job = 0; job < nIter && !interrupted; job++) {
    if (gen) {
      gen.jobNo = job;
      gen.batchStartedAt = Date.now();
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, faults.msPerImage * batchSize);
      function done() {
        clearTimeout(timer);
        skipBatch = () => undefined;
        resolve();
      }
      skipBatch = done;
    });
  }
  remove?.();
  if (gen) tasks?.finish(gen);
  end();
  release();
  if (interrupted) state.stats.interrupted++;
  const done = interrupted ? Math.min(count, Math.floor((Date.now() - started) / Math.max(1, faults.msPerImage))) : count;
  const prompt = typeof payload.prompt === "string" ? payload.prompt : "";
  const negative = typeof payload.negative_prompt === "string" ? payload.negative_prompt : "";
  const sampler = typeof payload.sampler_name === "string" ? payload.sampler_name : "Euler a";
  const cfg = num(payload.cfg_scale, 7);
  const denoising = api === "img2img" ? num(payload.denoising_strength, 0.75) : undefined;
  const infotext = (n: number) => infotextOf({ prompt, negative, steps, sampler, cfg, seed: seed + n, width, height, model, denoising });
  // A1111 answers send_images: false with an empty list.
  const images = faults.emptyImages || payload.send_images === false ? [] : generateImages({ prompt, seed, width, height, count: done, init, incompressible: faults.incompressible, infotext: kind === "cerebrium" ? undefined : infotext }).map((b) => b.toString("base64"));
  const seeds = Array.from({ length: count }, (_, i) => seed + i);
  const info = {
    prompt,
    all_prompts: seeds.map(() => prompt),
    negative_prompt: negative,
    seed,
    all_seeds: seeds,
    subseed: -1,
    all_subseeds: seeds.map(() => -1),
    width,
    height,
    sampler_name: sampler,
    cfg_scale: cfg,
    steps,
    batch_size: num(payload.batch_size, 1),
    n_iter: num(payload.n_iter, 1),
    sd_model_name: model.model_name,
    sd_model_hash: model.hash,
    ...(denoising !== undefined ? { denoising_strength: denoising } : {}),
    infotexts: seeds.map((_, n) => infotext(n)),
  };
  return { status: 200, body: { images, parameters: payload, info: JSON.stringify(info) }, bodyDelayMs: faults.bodyDelayMs };
}

/** `GET/POST /sdapi/v1/options`. */
export function options(state: SimState, patch?: Record<string, unknown>): Reply {
  if (patch && typeof patch.sd_model_checkpoint === "string") {
    const model = findModel(patch.sd_model_checkpoint);
    if (!model) return { status: 500, body: errorEnvelope("RuntimeError", `model ${patch.sd_model_checkpoint} not found`) };
    state.checkpoint = model.title;
    return { status: 200, body: null };
  }
  return { status: 200, body: { sd_model_checkpoint: state.checkpoint, samples_format: "png" } };
}

/**
 * What a ComfyUI server says about itself (`/object_info`, `/models/checkpoints`, `/system_stats`...),
 * answered for the whole deployment: the node definitions of every ComfyUI server's own
 * `/object_info` (kept a minute in this isolate), its lists (`/models`, a folder, `/embeddings`), and
 * the checkpoints of every ComfyUI backend (from `BACKENDS`, or as their schedulers keep what each
 * lists) as `CheckpointLoaderSimple`'s `ckpt_name` choices. A server is asked by its scheduler object
 * only, which keeps each answer and shares one ask among readers (durable-objects/backend-listings.ts):
 * an isolate's cache bounds nothing when hundreds of isolates each ask.
 */
import { parseJsonObject } from "../../backends/http";
import { config, type BackendConfig } from "../../config";
import type { ComfyListing } from "../../contracts/scheduler";
import type { Env } from "../../env";
import { LISTING_WAIT_MS, reportedModels } from "../../backends/catalog";
import { isObject, STREAMED_SAVE } from "../../jobs/workflow-graph";
import { ATTEMPT_UPLOAD, LOADERS } from "../../jobs/workflow-inputs";
import { schedulerStub } from "../../schedulers";
import { comboChoices, type NodeDefs } from "./validate";

const COMFY_KINDS = new Set(["comfyui", "runpod-comfyui"]);
const OBJECT_INFO_TTL_MS = 60_000;
/** How long no answer from any ComfyUI server is kept before they are asked again. */
const SILENT_TTL_MS = 10_000;
/** The scheduler objects keep the lists; this isolate keeps a settled answer a few seconds, to spare the hop. */
const FRONT_TTL_MS = 5_000;

/** Settled answers only, per BACKENDS value: a promise made in one request must not be awaited by another. */
let kept: { backends: string; at: number; defs: NodeDefs; complete: boolean } | undefined;

const comfyBackends = (env: Env): BackendConfig[] => config.backends(env).filter((b) => COMFY_KINDS.has(b.kind));

/** The checkpoints the ComfyUI backends serve, as ComfyUI names them (file names). */
export async function checkpoints(env: Env): Promise<string[]> {
  const backends = comfyBackends(env);
  const reported = await Promise.all(backends.map((b) => (b.models ? [] : reportedModels(env, b, LISTING_WAIT_MS))));
  const names = new Set([...backends.flatMap((b) => b.models ?? []), ...reported.flat().map((m) => m.filename || m.title)]);
  return [...names].sort();
}

/** The server's answer at `path`, as its scheduler object keeps it; undefined when there is none (or the object cannot be reached). */
const listing = (env: Env, b: BackendConfig, path: ComfyListing): Promise<string | undefined> => schedulerStub(env, b.name).listing(b, path).catch(() => undefined);

/** One server's definitions; undefined when it did not answer them (down, slow, not ComfyUI). */
async function serverDefs(env: Env, b: BackendConfig): Promise<NodeDefs | undefined> {
  const body = await listing(env, b, "/object_info");
  return body === undefined ? undefined : (parseJsonObject(body) as NodeDefs | undefined);
}

/**
 * Every node class the ComfyUI servers define (not RunPod endpoints: they have no `/object_info`).
 * `complete`: every backend that runs graphs answered, so a class missing here exists nowhere.
 */
export async function nodeDefinitions(env: Env): Promise<{ defs: NodeDefs; complete: boolean }> {
  const raw = env.BACKENDS ?? "";
  if (kept && kept.backends === raw && Date.now() - kept.at < (Object.keys(kept.defs).length ? OBJECT_INFO_TTL_MS : SILENT_TTL_MS)) return kept;
  const servers = comfyBackends(env).filter((b) => b.kind === "comfyui");
  const answers = await Promise.all(servers.map((b) => serverDefs(env, b)));
  const defs: NodeDefs = withStreamedSave(withoutJobFiles(mergeDefinitions(answers.filter((a) => a !== undefined))));
  const complete = answers.length > 0 && answers.every((a) => a !== undefined) && config.backends(env).every((b) => !b.types.includes("workflow") || b.kind === "comfyui");
  // Silence is kept a short while only, so a prompt is not held by an unreachable backend each time.
  kept = { backends: raw, at: Date.now(), defs, complete };
  return kept;
}

/**
 * SaveImageWebsocket as ComfyUI's custom_nodes/websocket_image_save.py defines it, wherever SaveImage
 * is defined: a server without it (custom nodes off) still runs it, as a SaveImage (see the ComfyUI
 * plan), and its images still reach the client's socket.
 */
export function withStreamedSave(defs: NodeDefs): NodeDefs {
  if (!defs.SaveImage || defs[STREAMED_SAVE]) return defs;
  const def = { input: { required: { images: ["IMAGE"] } }, input_order: { required: ["images"] }, output: [], output_is_list: [], output_name: [], name: STREAMED_SAVE, display_name: STREAMED_SAVE, description: "", python_module: "custom_nodes.websocket_image_save", category: "api/image", output_node: true };
  return { ...defs, [STREAMED_SAVE]: def };
}

/**
 * The servers' definitions together: each class as the first server defines it, its combos offering
 * what any server offers (their sampler and file lists differ), so a value one of them takes is taken.
 */
export function mergeDefinitions(answers: NodeDefs[]): NodeDefs {
  const out: NodeDefs = {};
  for (const defs of answers) for (const [name, def] of Object.entries(defs)) out[name] = out[name] ? withCombosOf(out[name], def) : def;
  return out;
}

/** `def` with each combo's choices joined by `other`'s for the same input. */
function withCombosOf(def: Record<string, unknown>, other: Record<string, unknown>): Record<string, unknown> {
  if (!isObject(def.input) || !isObject(other.input)) return def;
  const input: Record<string, unknown> = { ...def.input };
  for (const group of ["required", "optional"]) {
    const mine = input[group];
    const theirs = other.input[group];
    if (!isObject(mine) || !isObject(theirs)) continue;
    const merged: Record<string, unknown> = { ...mine };
    for (const [name, spec] of Object.entries(mine)) {
      const o = theirs[name];
      if (!Array.isArray(spec) || !Array.isArray(o)) continue;
      const [type, opts] = spec as unknown[];
      const a = comboChoices(type, isObject(opts) ? opts : {});
      const b = comboChoices(o[0], isObject(o[1]) ? o[1] : {});
      if (!a || !b) continue;
      const union = [...new Set([...a, ...b])];
      merged[name] = Array.isArray(type) ? [union, ...spec.slice(1)] : ["COMBO", { ...(isObject(opts) ? opts : {}), options: union }, ...spec.slice(2)];
    }
    input[group] = merged;
  }
  return { ...def, input };
}

/**
 * The definitions with no other job's file among their choices: a shared server lists every job's
 * uploads as LoadImage's `image` choices (and their outputs as LoadImageOutput's), which name their
 * runs. What is left of the loaders' lists is the server's own input files, which any graph may load.
 */
export function withoutJobFiles(defs: NodeDefs): NodeDefs {
  const out: NodeDefs = { ...defs };
  for (const name of LOADERS) {
    const def = defs[name];
    const input = def && isObject(def.input) ? def.input : undefined;
    const required = input && isObject(input.required) ? input.required : undefined;
    if (!input || !required || !Array.isArray(required.image)) continue;
    const keep = (choices: unknown[]) => (name === "LoadImageOutput" ? [] : choices.filter((c) => typeof c !== "string" || !ATTEMPT_UPLOAD.test(c.slice(c.lastIndexOf("/") + 1))));
    // `[choices, opts]`, or `["COMBO", {options}]` as newer servers write it.
    const [type, opts, ...rest] = required.image as unknown[];
    const image = [Array.isArray(type) ? keep(type) : type, ...(isObject(opts) && Array.isArray(opts.options) ? [{ ...opts, options: keep(opts.options) }] : opts === undefined ? [] : [opts]), ...rest];
    out[name] = { ...def, input: { ...input, required: { ...required, image } } };
  }
  return out;
}

/** One server's list at `path`; undefined when it gave none. */
async function serverList(env: Env, b: BackendConfig, path: ComfyListing): Promise<string[] | undefined> {
  const body = await listing(env, b, path);
  try {
    const list: unknown = body === undefined ? undefined : JSON.parse(body);
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === "string") : undefined;
  } catch {
    return undefined;
  }
}

/** Settled lists only, by path (one a server gave: the folders are the servers', not the clients'). */
const lists = new Map<ComfyListing, { backends: string; at: number; list: string[] }>();

/**
 * What the ComfyUI servers list at `path`, all of them together (each name once, in their order);
 * undefined when none answered with a list (ComfyUI's 404 for a model folder it does not have).
 */
export async function serverLists(env: Env, path: ComfyListing): Promise<string[] | undefined> {
  const raw = env.BACKENDS ?? "";
  const hit = lists.get(path);
  if (hit && hit.backends === raw && Date.now() - hit.at < FRONT_TTL_MS) return hit.list;
  const answers = await Promise.all(comfyBackends(env).filter((b) => b.kind === "comfyui").map((b) => serverList(env, b, path)));
  const found = answers.filter((a) => a !== undefined);
  if (!found.length) return undefined;
  const list = [...new Set(found.flat())];
  lists.set(path, { backends: raw, at: Date.now(), list });
  return list;
}

const checkpointLoader = (choices: string[]) => ({
  input: { required: { ckpt_name: [choices, { tooltip: "The name of the checkpoint (model) to load." }] } },
  input_order: { required: ["ckpt_name"] },
  output: ["MODEL", "CLIP", "VAE"],
  output_is_list: [false, false, false],
  output_name: ["MODEL", "CLIP", "VAE"],
  name: "CheckpointLoaderSimple",
  display_name: "Load Checkpoint",
  description: "Loads a diffusion model checkpoint.",
  python_module: "nodes",
  category: "loaders",
  output_node: false,
});

/** Every node definition, `CheckpointLoaderSimple` offering the checkpoints of all ComfyUI backends. */
export async function objectInfo(env: Env): Promise<NodeDefs> {
  const [{ defs }, choices] = await Promise.all([nodeDefinitions(env), checkpoints(env)]);
  const own = defs.CheckpointLoaderSimple;
  return { ...defs, CheckpointLoaderSimple: own ? withChoices(own, choices) : checkpointLoader(choices) };
}

/** `CheckpointLoaderSimple` offering `choices` as its `ckpt_name`. */
export function withChoices(def: Record<string, unknown>, choices: string[]): Record<string, unknown> {
  const input = def.input && typeof def.input === "object" ? (def.input as Record<string, Record<string, unknown>>) : {};
  const required = input.required ?? {};
  const current: unknown[] = Array.isArray(required.ckpt_name) ? required.ckpt_name : [];
  // Kept in the server's own form: `[choices, opts]`, or `["COMBO", {options}]` for a V3 node.
  const [type, opts] = current;
  const ckpt_name = type === "COMBO" && isObject(opts) ? ["COMBO", { ...opts, options: choices }] : [choices, ...current.slice(1)];
  return { ...def, input: { ...input, required: { ...required, ckpt_name } } };
}

/** `/system_stats`: the gateway has no device of its own; its GPUs are its backends'. */
export const systemStats = () => ({
  system: {
    os: "posix",
    ram_total: 0,
    ram_free: 0,
    comfyui_version: "easel",
    required_frontend_version: "",
    python_version: "",
    pytorch_version: "",
    embedded_python: false,
    argv: [],
  },
  devices: [],
});

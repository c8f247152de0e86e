/**
 * What a job becomes at a ComfyUI backend (a ComfyUI server or a worker-comfyui endpoint): the
 * graph to queue and the images to hand it first. Canonical jobs get the graphs Easel builds; a
 * `workflow` job's graph runs as given, its input images renamed per attempt.
 */
import type { GenerationSpec, Workflow } from "../jobs/spec";
import { streamedNodes, streamedPrefix } from "../jobs/workflow-graph";
import { sniffImage } from "../lib/image-sniff";
import { img2imgGraph } from "./comfy-graphs/img2img";
import { comfySampler } from "./comfy-graphs/samplers";
import { txt2imgGraph } from "./comfy-graphs/txt2img";
import { upscaleGraph, upscalerFor } from "./comfy-graphs/upscale";
import { modelKey } from "./models";
import type { BackendFailure, GenerationRequest } from "./types";

export interface ComfyPlan {
  prompt: Workflow;
  uploads: { name: string; bytes: Uint8Array }[];
  /** The sampling nodes: each is one equal part of the job's progress. */
  samplers: string[];
  /** A canonical job's output count, which must come back exactly; a workflow's is whatever it saves. */
  outputs?: number;
}

/** What the backend offers, as its `/object_info` lists it (empty when it cannot be asked). */
export interface ComfyChoices {
  checkpoints: readonly string[];
  upscaleModels: readonly string[];
  /** Only what the lists name can run: true for a ComfyUI server that answered, false when unknown. */
  listed: boolean;
}

/** Nodes whose `progress` messages are sampling steps. */
const SAMPLER_CLASSES = new Set(["KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"]);

const EXTENSIONS = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" } as const;

/** Uploads carry the attempt's id, so no two jobs (of any tenant) load each other's files. */
export const uploadName = (taskId: string, name: string): string => `${taskId}-${name}`;

const refuse = (message: string): BackendFailure => ({ code: "invalid_request", message, retryable: true });

type PlanRequest = Pick<GenerationRequest, "spec" | "taskId" | "initImage" | "inputImages">;

export function comfyPlan(req: PlanRequest, choices: ComfyChoices): ComfyPlan | BackendFailure {
  const { spec, taskId } = req;
  if (spec.type === "workflow") return workflowPlan(req);
  const filenamePrefix = `easel-${taskId}`;
  const init = req.initImage;
  const initUpload = init ? [{ name: uploadName(taskId, `init.${EXTENSIONS[sniffImage(init)?.contentType ?? "image/png"]}`), bytes: init }] : [];
  if (spec.type === "upscale") {
    if (!initUpload[0]) return { code: "invalid_request", message: "the upscale has no source image", retryable: false };
    const upscaler = upscalerFor(spec.upscale?.upscaler, choices.upscaleModels);
    if (!upscaler) return refuse(`the backend has no upscaler named ${JSON.stringify(spec.upscale?.upscaler)}`);
    const graph = upscaleGraph({ image: initUpload[0].name, width: spec.width, height: spec.height, upscaler, filenamePrefix });
    return { prompt: graph.prompt, uploads: initUpload, samplers: [], outputs: 1 };
  }
  const sampler = comfySampler(spec.sampler);
  // Another kind of backend may know the name (intake refuses the names no backend knows).
  if (!sampler) return refuse(`ComfyUI has no sampler like ${JSON.stringify(spec.sampler)}`);
  const ckpt = checkpointFor(spec, choices);
  if (!ckpt) return refuse(spec.model ? `the backend has no checkpoint ${JSON.stringify(spec.model)}` : "the backend lists no checkpoint to load");
  const inputs = { spec, ckpt, sampler, filenamePrefix };
  if (spec.type === "img2img") {
    if (!initUpload[0]) return { code: "invalid_request", message: "the img2img job has no init image", retryable: false };
    const graph = img2imgGraph({ ...inputs, image: initUpload[0].name });
    return { prompt: graph.prompt, uploads: initUpload, samplers: graph.samplers, outputs: spec.samples };
  }
  const graph = txt2imgGraph(inputs);
  return { prompt: graph.prompt, uploads: [], samplers: graph.samplers, outputs: spec.samples };
}

/** The job's model as the backend spells it; with no model asked, the first it lists. */
function checkpointFor(spec: GenerationSpec, choices: ComfyChoices): string | undefined {
  if (!spec.model) return choices.checkpoints[0];
  const key = modelKey(spec.model);
  const found = choices.checkpoints.find((c) => modelKey(c) === key);
  // A backend that could not list its checkpoints is handed the name as asked: ComfyUI refuses it if it lacks it.
  return found ?? (choices.listed ? undefined : spec.model);
}

/**
 * A workflow as given, but for the `image` inputs that name one of its uploads, which get the
 * upload's per-attempt name, and a SaveImageWebsocket, queued as a SaveImage: its images come back
 * on the socket only, so a dropped socket or a restart would lose them (the history lists none), and
 * a frame over the runtime's size limit for a received WebSocket message closes the socket. As a
 * SaveImage they are files the history names, read as every other output is.
 */
function workflowPlan({ spec, taskId, inputImages = [] }: PlanRequest): ComfyPlan {
  const uploads = inputImages.map((i) => ({ name: uploadName(taskId, i.name), bytes: i.bytes }));
  const renamed = new Map(inputImages.map((i, n) => [i.name, uploads[n]?.name ?? i.name]));
  const prompt: Workflow = {};
  const streamed = streamedNodes(spec.workflow);
  for (const [id, node] of Object.entries(spec.workflow ?? {})) {
    const image = node.inputs.image;
    const name = typeof image === "string" ? renamed.get(image) : undefined;
    const ordinal = streamed.get(id);
    if (ordinal !== undefined) prompt[id] = { ...node, class_type: "SaveImage", inputs: { images: node.inputs.images, filename_prefix: streamedPrefix(taskId, ordinal) } };
    else prompt[id] = name ? { ...node, inputs: { ...node.inputs, image: name } } : node;
  }
  return { prompt, uploads, samplers: samplersOf(prompt) };
}

/** A graph's sampling nodes, in node-id order. */
export function samplersOf(graph: Record<string, unknown>): string[] {
  const classOf = (node: unknown) => (node && typeof node === "object" ? (node as { class_type?: unknown }).class_type : undefined);
  return Object.keys(graph).filter((id) => SAMPLER_CLASSES.has(String(classOf(graph[id]))));
}

/** A canonical job's output count (an upscale makes one); a workflow's is whatever it saves. */
export const expectedOutputs = (spec: GenerationSpec): number | undefined => (spec.type === "workflow" ? undefined : spec.type === "upscale" ? 1 : spec.samples);

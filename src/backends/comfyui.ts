/**
 * A ComfyUI server (`http://host:8188`): the job's graph queued under ids derived from the attempt,
 * followed on the socket and read from the history. A restarted gateway finds the prompt again by
 * those ids (see durable-objects/job/lost-call.ts) and polls it.
 */
import type { BackendConfig } from "../config";
import type { Workflow } from "../jobs/spec";
import { clientIdOf, comfyCall, comfyChoices, findAttemptPrompt, findPrompt, promptIdOf, queuedGraph } from "./comfyui-api";
import { endOutcome, promptEnd } from "./comfyui-history";
import { comfyPlan, expectedOutputs, samplersOf } from "./comfyui-plan";
import { followPrompt, queuePrompt } from "./comfyui-prompt";
import { PromptSocket } from "./comfyui-socket";
import { uploadImages } from "./comfyui-upload";
import { failed, type HttpResult } from "./http";
import type { BackendAdapter, GenerationRequest, ImageStore, ModelInfo, Outcome, ResumeRequest, WorkflowOutputs } from "./types";
import { withDeadline } from "../lib/deadline";

const POLL_AFTER_MS = 2_000;
const LIST_TIMEOUT_MS = 10_000;

/** The graph with each `image` input that names an upload changed to the name the server gave it. */
function withUploadNames(prompt: Workflow, names: Map<string, string>): Workflow {
  const out: Workflow = {};
  for (const [id, node] of Object.entries(prompt)) {
    const image = node.inputs.image;
    const name = typeof image === "string" ? names.get(image) : undefined;
    out[id] = name && name !== image ? { ...node, inputs: { ...node.inputs, image: name } } : node;
  }
  return out;
}

export class ComfyUIAdapter implements BackendAdapter {
  constructor(readonly config: BackendConfig) {}

  async submit(req: GenerationRequest): Promise<Outcome> {
    const [promptId, clientId] = await Promise.all([promptIdOf(req.taskId), clientIdOf(req.taskId)]);
    // A workflow names its own models; a canonical job's checkpoint must be spelled as the server lists it.
    const canonical = req.spec.type !== "workflow";
    const choices = canonical ? await comfyChoices(this.config, req.signal) : { checkpoints: [], upscaleModels: [], listed: false };
    if (canonical && !choices.listed) return failed("backend_unavailable", "the backend did not list its models", true);
    const plan = comfyPlan(req, choices);
    if (!("prompt" in plan)) return { kind: "failed", failure: plan };
    const names = await uploadImages(this.config, plan.uploads, req.signal);
    if (!(names instanceof Map)) return { kind: "failed", failure: names };
    // The socket opens first, so no message of the prompt goes by unheard.
    const socket = await PromptSocket.open(this.config, { clientId, promptId }, plan.samplers, req, req.signal);
    try {
      // What the graph's nodes read of the request (extra_pnginfo, Comfy.org's credentials for API nodes).
      const extraData = { ...req.spec.extra_data, ...req.credentials };
      const queued = await queuePrompt(this.config, withUploadNames(plan.prompt, names), { promptId, clientId, extraData }, req.signal);
      if (!("queued" in queued)) return queued;
      if (queued.refused !== undefined) return await this.refuse(queued.queued, queued.refused, req.taskId, { socket, images: req.images, signal: req.signal });
      socket?.follow(queued.queued);
      return await this.follow(queued.queued, req.taskId, { socket, expected: plan.outputs, images: req.images, signal: req.signal });
    } finally {
      socket?.close();
    }
  }

  /**
   * Follows again a prompt found by its id after a restart or a lost answer: on a new socket under
   * the attempt's client id (ComfyUI sends a prompt's messages to its client id, whichever socket
   * holds it now), its history read first.
   */
  async resume(promptId: string, req: ResumeRequest): Promise<Outcome> {
    const clientId = await clientIdOf(req.taskId);
    const graph = await queuedGraph(this.config, promptId, req.signal);
    const socket = await PromptSocket.open(this.config, { clientId, promptId }, graph ? samplersOf(graph) : [], req, req.signal);
    try {
      return await this.follow(promptId, req.taskId, { socket, expected: expectedOutputs(req.spec), images: req.images, signal: req.signal, lookFirst: true });
    } finally {
      socket?.close();
    }
  }

  /**
   * A graph queued with outputs dropped would end without every image it saves: it fails as a graph
   * ComfyUI refused whole does, once nothing of it runs there (stopped, or else followed to its end).
   */
  private async refuse(promptId: string, why: string, taskId: string, ctx: Parameters<typeof followPrompt>[2]): Promise<Outcome> {
    const stopped = await withDeadline(LIST_TIMEOUT_MS, (signal) => this.cancel({ externalId: promptId, taskId }, signal), ctx.signal).catch(() => false);
    if (!stopped) {
      ctx.socket?.follow(promptId);
      await this.follow(promptId, taskId, ctx);
    }
    return failed("invalid_request", why, false);
  }

  private async follow(promptId: string, taskId: string, ctx: Parameters<typeof followPrompt>[2]): Promise<Outcome> {
    const outcome = await followPrompt(this.config, promptId, ctx);
    // A prompt past the backend's timeout is stopped there before another backend is tried.
    if (outcome.kind === "failed" && outcome.failure.code === "timeout") await withDeadline(LIST_TIMEOUT_MS, (signal) => this.cancel({ externalId: promptId, taskId }, signal)).catch(() => undefined);
    return outcome;
  }

  /** A re-attached prompt (found after a restart or a lost answer): its history, else its place in the queue. */
  async poll(externalId: string, ctx: { samples: number; upscale: boolean; workflow?: WorkflowOutputs; signal: AbortSignal; images: ImageStore }): Promise<Outcome> {
    const place = await findPrompt(this.config, externalId, ctx.signal);
    if (place.at === "unreachable") return failed("backend_unavailable", "the backend could not be asked about the prompt", true);
    if (place.at === "absent") return failed("backend_failed", "the backend no longer has the prompt (restarted?)", true);
    const end = place.at === "history" ? promptEnd(place.entry) : undefined;
    if (!end) return { kind: "pending", externalId, pollAfterMs: POLL_AFTER_MS };
    return endOutcome(this.config, end, { expected: ctx.workflow ? undefined : ctx.upscale ? 1 : ctx.samples, images: ctx.images, signal: ctx.signal });
  }

  async callback(): Promise<undefined> {
    return undefined;
  }

  /**
   * Stops this prompt only: ComfyUI's interrupt names the prompt (a shared server may be running a
   * neighbour's), and a prompt still waiting is taken out of the queue.
   */
  async cancel(attempt: { externalId: string | undefined; taskId: string }, signal: AbortSignal): Promise<boolean> {
    const [derived, clientId] = await Promise.all([promptIdOf(attempt.taskId), clientIdOf(attempt.taskId)]);
    const place = attempt.externalId ? await findPrompt(this.config, attempt.externalId, signal) : await findAttemptPrompt(this.config, { promptId: derived, clientId }, signal);
    const promptId = place.promptId ?? attempt.externalId ?? derived;
    const took = (res: HttpResult) => res.ok && res.status === 200;
    if (place.at === "running") return took(await comfyCall(this.config, "/interrupt", { body: { prompt_id: promptId }, signal }));
    if (place.at === "pending") return took(await comfyCall(this.config, "/queue", { body: { delete: [promptId] }, signal }));
    return place.at !== "unreachable";
  }

  /** The checkpoints `/object_info` lists for CheckpointLoaderSimple, by file name and by name without extension. */
  async listModels(signal: AbortSignal): Promise<ModelInfo[]> {
    const { checkpoints, listed } = await withDeadline(LIST_TIMEOUT_MS, (bounded) => comfyChoices(this.config, bounded), signal);
    if (!listed) return [];
    return checkpoints.map((file) => ({ title: file, model_name: file.replace(/\.[^./\\]+$/, ""), hash: null, sha256: null, filename: file, config: null, backend: this.config.name }));
  }
}

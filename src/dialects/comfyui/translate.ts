/** ComfyUI's server API onto the canonical `workflow` job: its request, its errors, its history and queue items. */
import { z } from "@hono/zod-openapi";
import type { EaselError } from "../../errors";
import type { JobSnapshot } from "../../jobs/results";
import type { Workflow } from "../../jobs/spec";
import { savesOutput } from "../../jobs/workflow-graph";
import type { JobOutput } from "../../schemas/job";
import { outputName } from "./files";

/** A socket's tags are at most 256 characters, and the client id is one of them (with a prefix). */
export const MAX_CLIENT_ID = 200;

/** `POST /prompt` as ComfyUI reads it; `prompt` is checked by the job's own graph rules (and shaped here for ComfyUI). */
export const PromptRequestSchema = z
  .looseObject({
    prompt: z.unknown().optional(),
    client_id: z.string().max(MAX_CLIENT_ID).optional(),
    prompt_id: z.string().optional(),
    extra_data: z.record(z.string(), z.unknown()).optional(),
    number: z.number().optional(),
    front: z.boolean().optional(),
  })
  .openapi("ComfyPromptRequest");
export type PromptRequest = z.infer<typeof PromptRequestSchema>;

/** What the prompt's job keeps for ComfyUI's answers (its `dialect_data`). */
export interface PromptData {
  prompt_id: string;
  number: number;
  client_id: string | null;
  extra_data: Record<string, unknown>;
  /** The loader inputs the job's graph names other than the client wrote them (see prompts.ts), as written: node id → file name. */
  renamed: Record<string, string>;
}

export const promptData = (snapshot: JobSnapshot): PromptData => {
  const d = snapshot.input.dialect_data;
  return {
    prompt_id: typeof d.prompt_id === "string" ? d.prompt_id : snapshot.job.id,
    number: typeof d.number === "number" ? d.number : 0,
    client_id: typeof d.client_id === "string" ? d.client_id : null,
    extra_data: d.extra_data && typeof d.extra_data === "object" ? (d.extra_data as Record<string, unknown>) : {},
    renamed: d.renamed && typeof d.renamed === "object" ? (d.renamed as Record<string, string>) : {},
  };
};

/** The graph as the client sent it: the job's, with each loader's file named as the client named it. */
export function clientGraph(snapshot: JobSnapshot): Workflow {
  const graph = snapshot.input.spec.workflow ?? {};
  const renamed = Object.entries(promptData(snapshot).renamed).filter(([id]) => graph[id] !== undefined);
  if (!renamed.length) return graph;
  const out: Workflow = { ...graph };
  for (const [id, image] of renamed) {
    const node = graph[id];
    if (node) out[id] = { ...node, inputs: { ...node.inputs, image } };
  }
  return out;
}

/** Where the graph is in ComfyUI's request: the errors of the job's graph rules name it so. */
export const PROMPT_FIELD = "prompt";

/** A client-chosen prompt id, as ComfyUI takes it: a lowercase hyphenated UUID. */
export const PROMPT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface ComfyErrorBody {
  error: { type: string; message: string; details: string; extra_info: Record<string, unknown> };
  node_errors: Record<string, { errors: { type: string; message: string; details: string; extra_info: Record<string, unknown> }[]; dependent_outputs: string[]; class_type: string }>;
}

export const comfyError = (type: string, message: string, details = "", node_errors: ComfyErrorBody["node_errors"] = {}): ComfyErrorBody => ({
  error: { type, message, details, extra_info: {} },
  node_errors,
});

/** Any error of the front in ComfyUI's `{error: {type, message, details, extra_info}, node_errors}`. */
export const comfyErrorOf = (err: EaselError): ComfyErrorBody => comfyError(err.code, err.message, err.details?.map((d) => `${d.path}: ${d.message}`).join("; ") ?? "");

/**
 * A graph the job's rules refused (a 422 naming `workflow.<node>...`), as ComfyUI's validation
 * answers it: each bad node in `node_errors`, under `prompt_outputs_failed_validation`.
 */
export function graphError(err: EaselError, graph: Record<string, unknown>): ComfyErrorBody {
  const located = (err.details ?? []).flatMap((d) => {
    const node = d.path.startsWith(`${PROMPT_FIELD}.`) ? Object.keys(graph).find((id) => d.path.startsWith(`${PROMPT_FIELD}.${id}.`) || d.path === `${PROMPT_FIELD}.${id}`) : undefined;
    return node === undefined ? [] : [{ d, node, at: d.path.slice(`${PROMPT_FIELD}.${node}`.length) }];
  });
  // As ComfyUI's first pass: a node that is no node (no class_type) stops the check, with no node_errors.
  const notNode = located.find((l) => l.at === "" || l.at === ".class_type");
  if (notNode) return comfyError("invalid_prompt", "Cannot execute because a node is missing the class_type property.", `Node ID '#${notNode.node}'`);
  const outputs = outputNodes(graph as Workflow);
  const node_errors: ComfyErrorBody["node_errors"] = {};
  for (const { d, node, at } of located) {
    const entry = graph[node];
    const class_type = entry && typeof entry === "object" && "class_type" in entry && typeof entry.class_type === "string" ? entry.class_type : "";
    const errors = node_errors[node]?.errors ?? [];
    errors.push({ type: reasonType(at, d.message, outputs.includes(node)), message: d.message, details: d.path, extra_info: {} });
    node_errors[node] = { errors, dependent_outputs: dependentOutputs(graph as Workflow, node), class_type };
  }
  if (!Object.keys(node_errors).length && (/output|no nodes/i.test(err.message) || !Object.keys(graph).length)) return comfyError("prompt_no_outputs", "Prompt has no outputs", err.message);
  return comfyError("prompt_outputs_failed_validation", "Prompt outputs failed validation", err.message, node_errors);
}

/**
 * ComfyUI's reason for a refusal of the job's graph rules, by where it is: an unknown checkpoint, or
 * a link to no node (raised inside the check of what the node feeds, or of the output node itself).
 */
function reasonType(at: string, message: string, isOutput: boolean): string {
  if (at === ".inputs.ckpt_name") return "value_not_in_list";
  if (at.startsWith(".inputs.") && /not in the workflow/.test(message)) return isOutput ? "exception_during_validation" : "exception_during_inner_validation";
  return "invalid_input";
}

/** The output nodes whose run needs `node`: the saving nodes it feeds, through any links. */
function dependentOutputs(graph: Workflow, node: string): string[] {
  const feeds = (id: string, seen: Set<string>): boolean => {
    if (id === node) return true;
    if (seen.has(id)) return false;
    seen.add(id);
    const inputs = graph[id]?.inputs;
    return Object.values(inputs && typeof inputs === "object" ? inputs : {}).some((v) => Array.isArray(v) && typeof v[0] === "string" && feeds(v[0], seen));
  };
  return outputNodes(graph).filter((o) => feeds(o, new Set()));
}

/** The graph's output nodes as ComfyUI lists them to execute: the nodes that save images. */
export const outputNodes = (graph: Workflow): string[] => Object.keys(graph).filter((id) => savesOutput(graph[id]?.class_type ?? ""));

const nodeOf = (output: JobOutput, fallback: string): string => ("node_id" in output && typeof output.node_id === "string" ? output.node_id : fallback);

/** `{<node>: {images: [{filename, subfolder, type}]}}`: each saved image under the node that saved it, /view-able here. */
export function historyOutputs(snapshot: JobSnapshot): Record<string, { images: { filename: string; subfolder: string; type: "output" }[] }> {
  const graph = snapshot.input.spec.workflow ?? {};
  const fallback = outputNodes(graph)[0] ?? "0";
  const outputs: Record<string, { images: { filename: string; subfolder: string; type: "output" }[] }> = {};
  snapshot.job.output.forEach((o, i) => {
    const node = nodeOf(o, fallback);
    (outputs[node] ??= { images: [] }).images.push({ filename: outputName(snapshot.job.id, i, o.content_type), subfolder: "", type: "output" });
  });
  return outputs;
}

/** ComfyUI's queue item: `[number, prompt_id, prompt, extra_data, outputs_to_execute]`. */
export type QueueItem = [number, string, Workflow, Record<string, unknown>, string[]];

export function queueItem(snapshot: JobSnapshot): QueueItem {
  const data = promptData(snapshot);
  // The client's own graph: one taken from the history and queued again must name its files as it did.
  const graph = clientGraph(snapshot);
  return [data.number, data.prompt_id, graph, data.extra_data, outputNodes(graph)];
}

/**
 * A queue item from the tenant's object alone, for a prompt past those read from their jobs: its
 * number, its id (what clients match: the SDK's `item[1] === prompt_id`) and its client, no graph.
 */
export const indexQueueItem = (p: { number: number; prompt_id: string; client_id: string | null }): QueueItem => [p.number, p.prompt_id, {}, p.client_id === null ? {} : { client_id: p.client_id }, []];

const stamp = (iso: string | null): number => (iso ? Date.parse(iso) : Date.now());

/** The messages ComfyUI keeps in a history entry's `status`, from the job's life. */
function statusMessages(snapshot: JobSnapshot): [string, Record<string, unknown>][] {
  const { job } = snapshot;
  const prompt_id = promptData(snapshot).prompt_id;
  const messages: [string, Record<string, unknown>][] = [];
  if (job.started_at) {
    messages.push(["execution_start", { prompt_id, timestamp: stamp(job.started_at) }]);
    messages.push(["execution_cached", { nodes: [], prompt_id, timestamp: stamp(job.started_at) }]);
  }
  const end = stamp(job.completed_at);
  if (job.status === "succeeded") messages.push(["execution_success", { prompt_id, timestamp: end }]);
  else if (job.status === "canceled") messages.push(["execution_interrupted", { prompt_id, node_id: null, node_type: null, executed: [], timestamp: end }]);
  else if (job.status === "failed") messages.push(["execution_error", executionError(snapshot, end)]);
  return messages;
}

/** ComfyUI's execution_error: the failing node as the backend named it, else `running` (the node last reported running). */
export function executionError(snapshot: JobSnapshot, timestamp: number, running: string | null = null): Record<string, unknown> {
  const { job } = snapshot;
  return {
    prompt_id: promptData(snapshot).prompt_id,
    node_id: job.error?.node?.id ?? running,
    node_type: job.error?.node?.type ?? null,
    executed: [],
    exception_message: job.error?.message ?? "the prompt failed",
    exception_type: job.error?.code ?? "error",
    traceback: [],
    current_inputs: {},
    current_outputs: {},
    timestamp,
  };
}

/** A history entry (`GET /history/{id}`), for an ended prompt's job. */
export function historyEntry(snapshot: JobSnapshot) {
  const outputs = historyOutputs(snapshot);
  const succeeded = snapshot.job.status === "succeeded";
  return {
    prompt: queueItem(snapshot),
    outputs,
    status: { status_str: succeeded ? "success" : "error", completed: succeeded, messages: statusMessages(snapshot) },
    meta: Object.fromEntries(Object.keys(outputs).map((node) => [node, { node_id: node, display_node: node, parent_node: null, real_node_id: node }])),
  };
}

/** The body `extra_data.webhook` receives when the prompt ends: its history entry, with its id. */
export const historyWebhook = (snapshot: JobSnapshot) => ({ prompt_id: promptData(snapshot).prompt_id, ...historyEntry(snapshot) });

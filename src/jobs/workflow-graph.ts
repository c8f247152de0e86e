/**
 * The checks a ComfyUI API-format graph must pass before a `workflow` job is accepted, so that a
 * graph ComfyUI would refuse at once never costs a queue slot: nodes of the right shape, links to
 * nodes that exist, and something that saves an image. Each problem names its node by path.
 */
import type { Workflow } from "./spec";

/** A graph's size bound: ComfyUI has no limit, but a graph past this is not a hand-made workflow. */
export const MAX_WORKFLOW_NODES = 1000;
/** A refusal lists at most this many problems: enough to fix a graph by, never a megabyte of them. */
export const MAX_GRAPH_ISSUES = 50;

/**
 * ComfyUI's nodes that save images as `type: "output"` (nodes.py and comfy_extras/nodes_images.py);
 * its other savers (SaveVideo, SaveWEBM, SaveAudio, SaveGLB...) and custom ones share the prefix.
 * `PreviewImage` is an output node too, but writes `temp` files, which are not a job's outputs.
 */
const SAVING_CLASSES = new Set(["SaveImage", "SaveAnimatedWEBP", "SaveAnimatedPNG", "Image Save"]);
export const savesOutput = (classType: string): boolean => SAVING_CLASSES.has(classType) || classType.startsWith("Save");

/**
 * ComfyUI's SaveImageWebsocket (custom_nodes/websocket_image_save.py, shipped with ComfyUI): it
 * sends its images to the prompt's client as binary frames instead of writing files.
 */
export const STREAMED_SAVE = "SaveImageWebsocket";

/**
 * The `filename_prefix` the `ordinal`-th SaveImageWebsocket of a graph is queued with, as a
 * SaveImage (see the ComfyUI plan): the attempt's own, one per such node, so each file names its node.
 */
export const streamedPrefix = (taskId: string, ordinal: number): string => `easel-${taskId}-ws${ordinal}`;

/** The graph's SaveImageWebsocket nodes, in the graph's order: node id → its ordinal. */
export function streamedNodes(graph: Workflow | undefined): Map<string, number> {
  return new Map(Object.entries(graph ?? {}).flatMap(([id, n]) => (n.class_type === STREAMED_SAVE ? [id] : [])).map((id, i) => [id, i]));
}

/** One problem: `path` runs from the graph (a node id, then `inputs` and the input's name); empty for the graph as a whole. */
export interface GraphIssue {
  path: string[];
  message: string;
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** `[node_id, output_index]`, as ComfyUI reads every list among a node's inputs. */
const isLink = (v: unknown[]): v is [string, number] => v.length === 2 && typeof v[0] === "string" && Number.isInteger(v[1]) && (v[1] as number) >= 0;

/** Every problem of `graph`, in node order; none means it is a graph ComfyUI can be given. */
export function graphIssues(graph: unknown): GraphIssue[] {
  if (!isObject(graph)) return [{ path: [], message: "must be a JSON object of nodes (ComfyUI's API format)" }];
  const ids = Object.keys(graph);
  if (!ids.length) return [{ path: [], message: "has no nodes" }];
  if (ids.length > MAX_WORKFLOW_NODES) return [{ path: [], message: `has ${ids.length} nodes, more than ${MAX_WORKFLOW_NODES}` }];
  const issues: GraphIssue[] = [];
  let saves = false;
  for (const id of ids) {
    if (issues.length >= MAX_GRAPH_ISSUES) break;
    const node = graph[id];
    const issue = (path: string[], message: string) => issues.push({ path: [id, ...path], message });
    if (!isObject(node)) {
      issue([], "a node must be an object with class_type and inputs");
      continue;
    }
    if (typeof node.class_type !== "string" || !node.class_type) issue(["class_type"], "required: the node's class name (a string)");
    else if (savesOutput(node.class_type)) saves = true;
    if (!isObject(node.inputs)) {
      issue(["inputs"], "required: an object of the node's inputs");
      continue;
    }
    for (const [name, value] of Object.entries(node.inputs)) {
      if (!Array.isArray(value)) continue;
      if (!isLink(value)) issue(["inputs", name], "a link is [node_id, output_index]: a node id string and a non-negative integer");
      else if (!Object.hasOwn(graph, value[0])) issue(["inputs", name], `links to node "${value[0]}", which is not in the workflow`);
    }
  }
  if (issues.length > MAX_GRAPH_ISSUES) issues.length = MAX_GRAPH_ISSUES;
  if (!saves && !issues.length) issues.push({ path: [], message: "has no output node: nothing saves an image (SaveImage or another Save node)" });
  return issues;
}

/** Each string `ckpt_name` the graph loads (CheckpointLoaderSimple and the other checkpoint loaders), with its node. */
/**
 * The graph's saving nodes with their `filename_prefix` as attempt `taskId` queued them (ComfyUI's
 * default when it has none; a SaveImageWebsocket's, the attempt's own): what tells an answer's file
 * names apart by node. A graph kept in R2 (too large to keep with the job) is not here, and gives none.
 */
export function saveNodes(graph: Workflow | undefined, taskId: string): { node: string; prefix: string }[] {
  const streamed = streamedNodes(graph);
  return Object.entries(graph ?? {}).flatMap(([node, n]) => {
    if (!savesOutput(n.class_type)) return [];
    const ordinal = streamed.get(node);
    return [{ node, prefix: ordinal !== undefined ? streamedPrefix(taskId, ordinal) : typeof n.inputs.filename_prefix === "string" ? n.inputs.filename_prefix : "ComfyUI" }];
  });
}

export function graphCheckpoints(graph: Workflow): { node: string; name: string }[] {
  return Object.entries(graph).flatMap(([node, n]) => (typeof n.inputs.ckpt_name === "string" ? [{ node, name: n.inputs.ckpt_name }] : []));
}

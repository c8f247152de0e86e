/**
 * Checks a graph against ComfyUI's node definitions (test/fixtures/comfyui/object_info.json, written
 * from nodes.py's INPUT_TYPES), as ComfyUI's validate_inputs would: every node's class exists, every
 * required input is there and no other, values fit their type, range and choices, and every link
 * points at an existing node's output of the type the input takes.
 */
import objectInfo from "../../../fixtures/comfyui/object_info.json";
import type { Workflow } from "../../../../src/jobs/spec";

type InputSpec = [unknown, Record<string, unknown>?];
interface NodeInfo {
  input: { required: Record<string, InputSpec> };
  output: string[];
  output_node: boolean;
}
const info = objectInfo as unknown as Record<string, NodeInfo>;

export const checkpointChoices = (info.CheckpointLoaderSimple?.input.required.ckpt_name?.[0] ?? []) as string[];
export const upscaleModelChoices = (info.UpscaleModelLoader?.input.required.model_name?.[0] ?? []) as string[];

const isLink = (v: unknown): v is [string, number] => Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "number";

export function graphProblems(graph: Workflow): string[] {
  const problems: string[] = [];
  let outputs = 0;
  for (const [id, node] of Object.entries(graph)) {
    const def = info[node.class_type];
    if (!def) {
      problems.push(`${id}: unknown class ${node.class_type}`);
      continue;
    }
    if (def.output_node) outputs++;
    for (const name of Object.keys(node.inputs)) if (!(name in def.input.required)) problems.push(`${id}.${name}: not an input of ${node.class_type}`);
    for (const [name, [type, opts = {}]] of Object.entries(def.input.required)) {
      const value = node.inputs[name];
      const at = `${id}.${name}`;
      if (value === undefined) problems.push(`${at}: missing`);
      else if (Array.isArray(type)) {
        // LoadImage takes any uploaded file, not just those listed when the definitions were read.
        if (opts.image_upload === true ? typeof value !== "string" : !type.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} not a choice`);
      } else if (type === "INT" || type === "FLOAT") {
        const ok = typeof value === "number" && (type === "FLOAT" || Number.isInteger(value));
        const min = typeof opts.min === "number" ? opts.min : -Infinity;
        const max = typeof opts.max === "number" ? opts.max : Infinity;
        if (!ok || value < min || value > max) problems.push(`${at}: ${JSON.stringify(value)} is not a ${type} in [${min}, ${max}]`);
      } else if (type === "STRING") {
        if (typeof value !== "string") problems.push(`${at}: not a string`);
      } else if (!isLink(value)) problems.push(`${at}: ${type} must be a link`);
      else {
        const source = graph[value[0]];
        const produced = source ? info[source.class_type]?.output[value[1]] : undefined;
        if (produced !== type) problems.push(`${at}: links to ${JSON.stringify(value)}, which gives ${produced ?? "nothing"}, not ${String(type)}`);
      }
    }
  }
  if (!outputs) problems.push("no output node");
  return problems;
}

export const nodesOf = (graph: Workflow, classType: string) => Object.entries(graph).filter(([, n]) => n.class_type === classType);

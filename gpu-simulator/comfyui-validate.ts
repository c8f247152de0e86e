/**
 * ComfyUI's `validate_prompt` (execution.py): the checks `POST /prompt` makes before queueing, and
 * its 400 answer `{"error": {type, message, details, extra_info}, "node_errors": {...}}`.
 */
import { NODES, type ComfyLists, type InputSpec } from "./comfyui-nodes";

export interface ComfyError {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}
export interface NodeErrors {
  [node: string]: { errors: ComfyError[]; dependent_outputs: string[]; class_type: string };
}
export type GraphNode = { class_type: string; inputs: Record<string, unknown> };
export type Graph = Record<string, GraphNode>;

export type Validation = { ok: true; graph: Graph; outputs: string[]; nodeErrors: NodeErrors } | { ok: false; error: ComfyError; nodeErrors: NodeErrors };

/** Raised where ComfyUI's validation itself throws (a link to a node that is not there). */
class LinkFault extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const fail = (type: string, message: string, details = "", extra_info: Record<string, unknown> = {}): Validation => ({ ok: false, error: { type, message, details, extra_info }, nodeErrors: {} });

/** Python's `str(list)` of strings, as ComfyUI puts a combo's choices in its message. */
const pyList = (xs: string[]) => `[${xs.map((x) => `'${x}'`).join(", ")}]`;

/** `int(v)` / `float(v)` as Python converts a widget value; undefined when Python would raise. */
function convert(kind: string, v: unknown): unknown {
  if (kind === "STRING") return typeof v === "string" ? v : JSON.stringify(v);
  if (kind === "BOOLEAN") return Boolean(v);
  const n = typeof v === "boolean" ? Number(v) : typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  if (!Number.isFinite(n)) return undefined;
  if (kind === "INT") return typeof v === "string" && !/^\s*[+-]?\d+\s*$/.test(v) ? undefined : Math.trunc(n);
  return n;
}

/** A node's own errors, and whether it is valid (a node fed by an invalid one is not, with no errors of its own). */
type Checked = { valid: boolean; errors: ComfyError[] };

function validateNode(graph: Graph, id: string, done: Map<string, Checked>, lists: ComfyLists, files: (name: string) => boolean): Checked {
  const seen = done.get(id);
  if (seen) return seen;
  const node = graph[id] as GraphNode;
  const cls = NODES[node.class_type];
  if (!cls) throw new LinkFault(`'${node.class_type}'`);
  const groups = cls.input(lists);
  const errors: ComfyError[] = [];
  // Recorded first: a cycle meets this entry instead of recursing for ever.
  const result: Checked = { valid: true, errors };
  done.set(id, result);
  const specs: [string, InputSpec, boolean][] = [
    ...Object.entries(groups.required).map(([k, s]): [string, InputSpec, boolean] => [k, s, true]),
    ...Object.entries(groups.optional ?? {}).map(([k, s]): [string, InputSpec, boolean] => [k, s, false]),
  ];
  for (const [name, spec, required] of specs) {
    const [type, opts = {}] = spec;
    const info = [type, opts];
    if (!(name in node.inputs)) {
      if (required) errors.push({ type: "required_input_missing", message: "Required input is missing", details: name, extra_info: { input_name: name } });
      continue;
    }
    const val = node.inputs[name];
    if (Array.isArray(val)) {
      if (val.length !== 2) {
        errors.push({ type: "bad_linked_input", message: "Bad linked input, must be a length-2 list of [node_id, slot_index]", details: name, extra_info: { input_name: name, input_config: info, received_value: val } });
        continue;
      }
      const from = graph[String(val[0])];
      if (!from) throw new LinkFault(`'${String(val[0])}'`);
      const fromCls = NODES[from.class_type];
      const received = fromCls?.output[Number(val[1])];
      if (received === undefined) throw new LinkFault("tuple index out of range");
      if (received !== type && type !== "*") {
        errors.push({ type: "return_type_mismatch", message: "Return type mismatch between linked nodes", details: `${name}, received_type(${received}) mismatch input_type(${String(type)})`, extra_info: { input_name: name, input_config: info, received_type: received, linked_node: val } });
        continue;
      }
      try {
        if (!validateNode(graph, String(val[0]), done, lists, files).valid) result.valid = false;
      } catch (e) {
        if (!(e instanceof LinkFault)) throw e;
        result.valid = false;
        done.set(String(val[0]), { valid: false, errors: [{ type: "exception_during_inner_validation", message: "Exception when validating inner node", details: e.message, extra_info: { input_name: name, input_config: info, exception_message: e.message, exception_type: "KeyError", traceback: [], linked_node: val } }] });
      }
      continue;
    }
    if (typeof type === "string") {
      const converted = convert(type, val);
      if (converted === undefined) {
        errors.push({ type: "invalid_input_type", message: `Failed to convert an input value to a ${type} value`, details: `${name}, ${String(val)}, invalid literal`, extra_info: { input_name: name, input_config: info, received_value: val, exception_message: "invalid literal" } });
        continue;
      }
      node.inputs[name] = converted;
      const n = converted as number;
      if (typeof opts.min === "number" && n < opts.min) {
        errors.push({ type: "value_smaller_than_min", message: `Value ${n} smaller than min of ${opts.min}`, details: name, extra_info: { input_name: name, input_config: info, received_value: n } });
        continue;
      }
      if (typeof opts.max === "number" && n > opts.max) {
        errors.push({ type: "value_bigger_than_max", message: `Value ${n} bigger than max of ${opts.max}`, details: name, extra_info: { input_name: name, input_config: info, received_value: n } });
      }
      continue;
    }
    // LoadImage checks its file in VALIDATE_INPUTS instead of against the combo.
    if (node.class_type === "LoadImage" && name === "image") {
      if (!files(String(val))) errors.push({ type: "custom_validation_failed", message: "Custom validation failed for node", details: `image - Invalid image file: ${String(val)}`, extra_info: { input_name: "image" } });
      continue;
    }
    if (!type.includes(val as string)) {
      const big = type.length > 20;
      errors.push({ type: "value_not_in_list", message: "Value not in list", details: `${name}: '${String(val)}' not in ${big ? `(list of length ${type.length})` : pyList(type)}`, extra_info: { input_name: name, input_config: big ? null : info, received_value: val } });
    }
  }
  if (errors.length > 0) result.valid = false;
  return result;
}

/** `files(name)`: whether LoadImage can open `name` (an input file, or one annotated `[output]`/`[temp]`). */
export function validatePrompt(prompt: unknown, lists: ComfyLists, files: (name: string) => boolean): Validation {
  if (!isObject(prompt)) return fail("invalid_prompt", "Cannot execute because the prompt is not an object of nodes.");
  const graph = prompt as Graph;
  const outputs: string[] = [];
  for (const [id, node] of Object.entries(graph)) {
    if (!isObject(node) || typeof node.class_type !== "string") return fail("invalid_prompt", "Cannot execute because a node is missing the class_type property.", `Node ID '#${id}'`);
    if (!NODES[node.class_type]) return fail("missing_node_type", `Node '${node.class_type}' not found. The custom node may not be installed.`, `Node ID '#${id}'`, { node_id: id, class_type: node.class_type, node_title: node.class_type });
    if (!isObject(node.inputs)) node.inputs = {};
    if (NODES[node.class_type]?.outputNode) outputs.push(id);
  }
  if (outputs.length === 0) return fail("prompt_no_outputs", "Prompt has no outputs");

  const done = new Map<string, Checked>();
  const good: string[] = [];
  const failed: [string, ComfyError[]][] = [];
  const nodeErrors: NodeErrors = {};
  for (const o of outputs) {
    let checked: Checked;
    try {
      checked = validateNode(graph, o, done, lists, files);
    } catch (e) {
      if (!(e instanceof LinkFault)) throw e;
      checked = { valid: false, errors: [{ type: "exception_during_validation", message: "Exception when validating node", details: e.message, extra_info: { exception_type: "KeyError", traceback: [] } }] };
      done.set(o, checked);
    }
    if (checked.valid) {
      good.push(o);
      continue;
    }
    failed.push([o, checked.errors]);
    // Nodes invalid only through an upstream node are not reported themselves, as in ComfyUI.
    for (const [id, c] of done) {
      if (c.valid || c.errors.length === 0) continue;
      const entry = (nodeErrors[id] ??= { errors: c.errors, dependent_outputs: [], class_type: graph[id]?.class_type ?? "" });
      entry.dependent_outputs.push(o);
    }
  }
  if (good.length === 0) {
    const details = failed.flatMap(([, rs]) => rs.map((r) => `${r.message}: ${r.details}`)).join("\n");
    return { ok: false, error: { type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation", details, extra_info: {} }, nodeErrors };
  }
  return { ok: true, graph, outputs: good, nodeErrors };
}

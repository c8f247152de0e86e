/**
 * ComfyUI's `validate_prompt` (execution.py) over the node definitions the ComfyUI backends
 * themselves publish (`/object_info`): what a ComfyUI server refuses at `POST /prompt`, refused
 * here in its words, before any job exists. Checked: each node's class, an output to run, required
 * inputs, links (their shape, their target, the types they carry) and the bounds of number widgets,
 * and a combo's value (among the choices of every backend together: their lists differ), each only
 * on nodes an output depends on, as ComfyUI checks them. Not checked: a file a node loads (the
 * tenant's uploads are no backend's choices yet), a checkpoint (matched by routing, as model names
 * are) and what a node validates in its own code.
 */
import { isObject } from "../../jobs/workflow-graph";
import { namesFile } from "../../jobs/workflow-inputs";
import { comfyError, type ComfyErrorBody } from "./translate";

/** Node definitions by class, as `/object_info` gives them. */
export type NodeDefs = Record<string, Record<string, unknown>>;
type Reason = ComfyErrorBody["error"];
type Checked = { valid: boolean; errors: Reason[] };
type Node = { class_type: string; inputs: Record<string, unknown> };

/** Raised where ComfyUI's own validation raises: a link to a node that is not there, or to an output it does not have. */
class LinkFault extends Error {
  constructor(
    message: string,
    readonly pythonType: "KeyError" | "IndexError",
  ) {
    super(message);
  }
}

/** `[type, options]` of each input of a class, required ones first. */
function inputSpecs(def: Record<string, unknown>): [name: string, type: unknown, opts: Record<string, unknown>, required: boolean][] {
  const input = isObject(def.input) ? def.input : {};
  const group = (g: unknown, required: boolean) =>
    Object.entries(isObject(g) ? g : {}).map(([name, spec]): [string, unknown, Record<string, unknown>, boolean] => {
      const [type, opts] = Array.isArray(spec) ? spec : [spec];
      return [name, type, isObject(opts) ? opts : {}, required];
    });
  return [...group(input.required, true), ...group(input.optional, false)];
}

/** comfy_execution/validation.py: types match when they share one of their comma-separated names, or either is `*`. */
function typesMatch(received: unknown, wanted: unknown): boolean {
  if (received === wanted) return true;
  if (typeof received !== "string" || typeof wanted !== "string") return true;
  const names = (t: string) => new Set(t.split(",").map((s) => s.trim()));
  const a = names(received);
  const b = names(wanted);
  return a.has("*") || b.has("*") || [...a].some((t) => b.has(t));
}

/** Python's `int()` / `float()` of a widget value; undefined where Python would raise. */
function asNumber(kind: "INT" | "FLOAT", v: unknown): number | undefined {
  if (typeof v === "boolean") return Number(v);
  if (typeof v === "number") return kind === "INT" ? Math.trunc(v) : v;
  if (typeof v !== "string" || v.trim() === "") return undefined;
  if (kind === "INT") return /^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : undefined;
  const n = Number(v);
  return Number.isNaN(n) ? undefined : n;
}

/** A combo's choices: `[choices, opts]`, or `["COMBO", {options}]` as newer servers write it; undefined for any other input. */
export function comboChoices(type: unknown, opts: Record<string, unknown>): unknown[] | undefined {
  if (Array.isArray(type)) return type;
  return type === "COMBO" && Array.isArray(opts.options) ? opts.options : undefined;
}

/** Python's `str()` of a list of choices, as ComfyUI's message quotes it. */
const pythonList = (choices: unknown[]): string => `[${choices.map((c) => (typeof c === "string" ? `'${c}'` : String(c))).join(", ")}]`;

/** execution.py's `value_not_in_list`: a long list is named by its length only. */
function comboProblem(name: string, type: unknown, opts: Record<string, unknown>, value: unknown): Reason | undefined {
  const choices = comboChoices(type, opts);
  if (!choices || choices.includes(value)) return undefined;
  const long = choices.length > 20;
  return {
    type: "value_not_in_list",
    message: "Value not in list",
    details: `${name}: '${String(value)}' not in ${long ? `(list of length ${choices.length})` : pythonList(choices)}`,
    extra_info: { input_name: name, input_config: long ? null : [type, opts], received_value: value },
  };
}

function widgetProblem(classType: string, name: string, type: unknown, opts: Record<string, unknown>, value: unknown): Reason | undefined {
  if (name !== "ckpt_name" && !namesFile(classType, name)) {
    const combo = comboProblem(name, type, opts, value);
    if (combo) return combo;
  }
  if (type !== "INT" && type !== "FLOAT") return undefined;
  const info = [type, opts];
  const n = asNumber(type, value);
  if (n === undefined) return { type: "invalid_input_type", message: `Failed to convert an input value to a ${type} value`, details: `${name}, ${String(value)}, invalid literal`, extra_info: { input_name: name, input_config: info, received_value: value } };
  if (typeof opts.min === "number" && n < opts.min) return { type: "value_smaller_than_min", message: `Value ${n} smaller than min of ${opts.min}`, details: name, extra_info: { input_name: name, input_config: info, received_value: n } };
  if (typeof opts.max === "number" && n > opts.max) return { type: "value_bigger_than_max", message: `Value ${n} bigger than max of ${opts.max}`, details: name, extra_info: { input_name: name, input_config: info, received_value: n } };
  return undefined;
}

function validateNode(defs: NodeDefs, graph: Record<string, Node>, id: string, done: Map<string, Checked>): Checked {
  const seen = done.get(id);
  if (seen) return seen;
  const node = graph[id] as Node;
  const def = defs[node.class_type] ?? {};
  const errors: Reason[] = [];
  // Recorded first: a cycle meets this entry rather than recursing for ever.
  const result: Checked = { valid: true, errors };
  done.set(id, result);
  for (const [name, type, opts, required] of inputSpecs(def)) {
    if (!Object.hasOwn(node.inputs, name)) {
      if (required) errors.push({ type: "required_input_missing", message: "Required input is missing", details: name, extra_info: { input_name: name } });
      continue;
    }
    const value = node.inputs[name];
    if (!Array.isArray(value)) {
      const problem = widgetProblem(node.class_type, name, type, opts, value);
      if (problem) errors.push(problem);
      continue;
    }
    const info = [type, opts];
    if (value.length !== 2) {
      errors.push({ type: "bad_linked_input", message: "Bad linked input, must be a length-2 list of [node_id, slot_index]", details: name, extra_info: { input_name: name, input_config: info, received_value: value } });
      continue;
    }
    const from = graph[String(value[0])];
    if (!from) throw new LinkFault(`'${String(value[0])}'`, "KeyError");
    const outputs = defs[from.class_type]?.output;
    const received = Array.isArray(outputs) ? outputs[Number(value[1])] : undefined;
    if (received === undefined) throw new LinkFault("tuple index out of range", "IndexError");
    if (!typesMatch(received, type)) {
      errors.push({ type: "return_type_mismatch", message: "Return type mismatch between linked nodes", details: `${name}, received_type(${String(received)}) mismatch input_type(${String(type)})`, extra_info: { input_name: name, input_config: info, received_type: received, linked_node: value } });
      continue;
    }
    try {
      if (!validateNode(defs, graph, String(value[0]), done).valid) result.valid = false;
    } catch (err) {
      if (!(err instanceof LinkFault)) throw err;
      result.valid = false;
      done.set(String(value[0]), { valid: false, errors: [{ type: "exception_during_inner_validation", message: "Exception when validating inner node", details: err.message, extra_info: { input_name: name, input_config: info, exception_message: err.message, exception_type: err.pythonType, traceback: [], linked_node: value } }] });
    }
  }
  if (errors.length) result.valid = false;
  return result;
}

/** ComfyUI's 400 for `graph` (an object of nodes), or undefined when ComfyUI would queue it. */
export function promptProblem(defs: NodeDefs, graph: Record<string, unknown>): ComfyErrorBody | undefined {
  const outputs: string[] = [];
  for (const [id, node] of Object.entries(graph)) {
    if (!isObject(node) || typeof node.class_type !== "string") return comfyError("invalid_prompt", "Cannot execute because a node is missing the class_type property.", `Node ID '#${id}'`);
    const def = defs[node.class_type];
    if (!def) {
      const body = comfyError("missing_node_type", `Node '${node.class_type}' not found. The custom node may not be installed.`, `Node ID '#${id}'`);
      return { ...body, error: { ...body.error, extra_info: { node_id: id, class_type: node.class_type, node_title: node.class_type } } };
    }
    if (!isObject(node.inputs)) return comfyError("invalid_prompt", "Cannot execute because a node's inputs are not an object.", `Node ID '#${id}'`);
    if (def.output_node === true) outputs.push(id);
  }
  if (!outputs.length) return comfyError("prompt_no_outputs", "Prompt has no outputs");
  const nodes = graph as Record<string, Node>;
  const done = new Map<string, Checked>();
  const failed: Reason[] = [];
  const node_errors: ComfyErrorBody["node_errors"] = {};
  let good = 0;
  for (const o of outputs) {
    let checked: Checked;
    try {
      checked = validateNode(defs, nodes, o, done);
    } catch (err) {
      if (!(err instanceof LinkFault)) throw err;
      checked = { valid: false, errors: [{ type: "exception_during_validation", message: "Exception when validating node", details: err.message, extra_info: { exception_type: err.pythonType, traceback: [] } }] };
      done.set(o, checked);
    }
    if (checked.valid) {
      good++;
      continue;
    }
    failed.push(...checked.errors);
    // A node invalid only through one upstream is not reported itself, as in ComfyUI.
    for (const [id, c] of done) {
      if (c.valid || !c.errors.length) continue;
      (node_errors[id] ??= { errors: c.errors, dependent_outputs: [], class_type: nodes[id]?.class_type ?? "" }).dependent_outputs.push(o);
    }
  }
  // As ComfyUI: a prompt with one good output runs that one (the job runs the whole graph).
  if (good) return undefined;
  return comfyError("prompt_outputs_failed_validation", "Prompt outputs failed validation", failed.map((r) => `${r.message}: ${r.details}`).join("\n"), node_errors);
}

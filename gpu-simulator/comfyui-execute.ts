/**
 * Runs one validated ComfyUI prompt as execution.py's PromptExecutor does: `execution_start`,
 * `execution_cached`, then per node `executing` (and `progress` per sampling step, `executed` for a
 * node with UI output, and `progress_state` as each node starts, steps and finishes), ending in
 * `execution_success`, `execution_error` or `execution_interrupted`. With a cache (ComfyUI's
 * default; without one it is as if started with `--cache-none`), a node whose signature ran in the
 * previous prompt is not run again: it is listed in `execution_cached`, and an output node among
 * them reports its earlier images in `executed`.
 */
import type { Cached, OutputCache } from "./comfyui-cache";
import type { ComfyFiles } from "./comfyui-files";
import { NODES } from "./comfyui-nodes";
import { NodeFailure, RUN, type ImageRef } from "./comfyui-nodes-run";
import type { Graph } from "./comfyui-validate";
import type { Kind, SimState } from "./state";

export type Message = [event: string, data: Record<string, unknown>];

export interface Execution {
  state: SimState;
  kind: Kind;
  files: ComfyFiles;
  promptId: string;
  graph: Graph;
  outputs: string[];
  extraData: Record<string, unknown>;
  /** Sends one message to the prompt's client (execution messages go only to its `client_id`). */
  emit(event: string, data: Record<string, unknown>): void;
  /** Sends a PNG to the prompt's client as a binary preview frame. */
  emitImage(png: Uint8Array): void;
  /** Set by an interrupt; checked between steps and nodes. */
  interrupted(): boolean;
  cache?: OutputCache;
}

export interface ExecutionResult {
  success: boolean;
  outputs: Record<string, { images: ImageRef[] }>;
  meta: Record<string, { node_id: string; display_node: string; parent_node: null; real_node_id: string }>;
  /** History's `status.messages`: the start, cached and end events, each with its timestamp. */
  messages: Message[];
}

class Interrupted extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SLICE_MS = 50;

/** Dependencies first, each node once, from the output nodes in order; a cached node's inputs are not needed. */
function order(graph: Graph, outputs: string[], cached: (id: string) => boolean): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const visit = (id: string, depth: number) => {
    if (seen.has(id) || depth > 10_000 || !graph[id]) return;
    seen.add(id);
    if (!cached(id)) for (const v of Object.values(graph[id].inputs)) if (Array.isArray(v) && v.length === 2) visit(String(v[0]), depth + 1);
    out.push(id);
  };
  for (const o of outputs) visit(o, 0);
  return out;
}

export async function execute(x: Execution): Promise<ExecutionResult> {
  const faults = x.state.faults(x.kind);
  const messages: Message[] = [];
  const record = (event: string, data: Record<string, unknown>) => {
    const stamped = { ...data, timestamp: Date.now() };
    messages.push([event, stamped]);
    x.emit(event, stamped);
  };
  const result: ExecutionResult = { success: true, outputs: {}, meta: {}, messages };
  const positive = Object.values(x.graph).find((n) => n.class_type === "CLIPTextEncode")?.inputs.text;
  const end = x.state.begin(x.kind, typeof positive === "string" ? positive : "");
  record("execution_start", { prompt_id: x.promptId });
  const sigs = x.cache?.signatures(x.graph, x.files);
  const hit = (id: string) => x.cache?.get(sigs?.get(id));
  const fresh = new Map<string, Cached>();
  record("execution_cached", { nodes: Object.keys(x.graph).filter((id) => hit(id)), prompt_id: x.promptId });
  const values = new Map<string, unknown[]>();
  // comfy_execution/progress.py: every started node's state, sent whole on each change.
  const nodeStates = new Map<string, { value: number; max: number; state: "running" | "finished" }>();
  const progressState = (id: string, value: number, max: number, state: "running" | "finished") => {
    nodeStates.set(id, { value, max, state });
    const nodes = Object.fromEntries([...nodeStates].map(([n, s]) => [n, { ...s, node_id: n, prompt_id: x.promptId, display_node_id: n, parent_node_id: null, real_node_id: n }]));
    x.emit("progress_state", { prompt_id: x.promptId, nodes });
  };
  const executed: string[] = [];
  // An injected failure strikes the first sampler (or the last node when there is none), as a CUDA error would.
  const failure = Math.random() < faults.errorRate ? new NodeFailure("RuntimeError", "simulated backend failure") : Math.random() < faults.oomRate ? new NodeFailure("torch.OutOfMemoryError", "Allocation on device 0 would exceed allowed memory. (out of memory)") : undefined;
  const ids = order(x.graph, x.outputs, (id) => hit(id) !== undefined);
  const failAt = ids.find((id) => x.graph[id]?.class_type.startsWith("KSampler")) ?? ids[ids.length - 1];
  let current = "";
  try {
    for (const id of ids) {
      current = id;
      if (x.interrupted()) throw new Interrupted();
      const node = x.graph[id] as Graph[string];
      const reused = hit(id);
      if (reused) {
        values.set(id, reused.values);
        if (reused.ui) {
          result.outputs[id] = reused.ui;
          result.meta[id] = { node_id: id, display_node: id, parent_node: null, real_node_id: id };
          x.emit("executed", { node: id, display_node: id, output: reused.ui, prompt_id: x.promptId });
        }
        progressState(id, 1, 1, "finished");
        continue;
      }
      progressState(id, 0, 1, "running");
      x.emit("executing", { node: id, display_node: id, prompt_id: x.promptId });
      const inputs: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node.inputs)) inputs[k] = Array.isArray(v) && v.length === 2 ? values.get(String(v[0]))?.[Number(v[1])] : v;
      if (failure && id === failAt) throw failure;
      const run = RUN[node.class_type];
      if (!run || !NODES[node.class_type]) throw new NodeFailure("KeyError", `'${node.class_type}'`);
      const out = await run(
        {
          files: x.files,
          graph: x.graph,
          extraPngInfo: (x.extraData.extra_pnginfo as Record<string, unknown> | undefined) ?? {},
          sample: async (steps, samples) => {
            const stepMs = steps > 0 ? (faults.msPerImage * samples) / steps : 0;
            for (let s = 1; s <= steps; s++) {
              // Slept in slices, so an interrupt lands within one of them, as ComfyUI checks it inside a step.
              for (let left = stepMs; left > 0 && !x.interrupted(); left -= SLICE_MS) await sleep(Math.min(left, SLICE_MS));
              if (x.interrupted()) throw new Interrupted();
              progressState(id, s, steps, "running");
              x.emit("progress", { value: s, max: steps, prompt_id: x.promptId, node: id });
            }
          },
          stream: (value, max, png) => {
            progressState(id, value, max, "running");
            x.emit("progress", { value, max, prompt_id: x.promptId, node: id });
            x.emitImage(png);
          },
        },
        inputs,
      );
      values.set(id, out.values);
      executed.push(id);
      const sig = sigs?.get(id);
      if (sig !== undefined) fresh.set(sig, out);
      if (out.ui) {
        result.outputs[id] = out.ui;
        result.meta[id] = { node_id: id, display_node: id, parent_node: null, real_node_id: id };
        x.emit("executed", { node: id, display_node: id, output: out.ui, prompt_id: x.promptId });
      }
      const last = nodeStates.get(id);
      progressState(id, last?.max ?? 1, last?.max ?? 1, "finished");
    }
    record("execution_success", { prompt_id: x.promptId });
  } catch (e) {
    result.success = false;
    const base = { prompt_id: x.promptId, node_id: current, node_type: x.graph[current]?.class_type ?? "", executed };
    if (e instanceof Interrupted) {
      x.state.stats.interrupted++;
      record("execution_interrupted", base);
    } else {
      const f = e instanceof NodeFailure ? e : new NodeFailure("Exception", String(e));
      record("execution_error", { ...base, exception_message: f.message, exception_type: f.exceptionType, traceback: [`  File "/comfyui/execution.py", line 496, in execute\n`, `${f.exceptionType}: ${f.message}\n`], current_inputs: {}, current_outputs: executed });
    }
  } finally {
    if (sigs) x.cache?.keep(sigs, fresh);
    end();
  }
  return result;
}

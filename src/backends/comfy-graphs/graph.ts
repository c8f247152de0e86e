/** Building ComfyUI API-format graphs: nodes numbered in the order they are added. */
import type { Workflow } from "../../jobs/spec";

/** A link to a node's output: `[node_id, output_index]`. */
export type Link = [string, number];

/** A graph Easel built for a canonical job, and what the adapter needs to follow it. */
export interface BuiltGraph {
  prompt: Workflow;
  /** The KSampler nodes, in sample order: progress counts each as one part of the job. */
  samplers: string[];
  /** The SaveImage nodes, in the order of the job's outputs (ascending node ids). */
  saves: string[];
}

export class GraphBuilder {
  readonly prompt: Workflow = {};
  private next = 1;

  /** Adds a node; its id is the next number, so node-id order is the order nodes were added in. */
  add(class_type: string, inputs: Record<string, unknown>): string {
    const id = String(this.next++);
    this.prompt[id] = { class_type, inputs };
    return id;
  }
}

export const out = (node: string, index = 0): Link => [node, index];

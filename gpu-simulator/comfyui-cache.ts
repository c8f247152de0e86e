/**
 * ComfyUI's classic output cache (comfy_execution/caching.py): a node's outputs are kept under its
 * input signature (class, widget values, the signatures it links from; LoadImage's file by its
 * hash, as its IS_CHANGED does), and a later prompt reuses every node whose signature matches
 * instead of running it. Only the latest prompt's nodes stay cached.
 */
import { createHash } from "node:crypto";
import type { ComfyFiles } from "./comfyui-files";
import type { ImageRef } from "./comfyui-nodes-run";
import type { Graph } from "./comfyui-validate";

export type Cached = { values: unknown[]; ui?: { images: ImageRef[] } };

const ALWAYS_CHANGED = new Set(["SaveImageWebsocket"]);
const sha = (s: string | Buffer) => createHash("sha256").update(s).digest("hex");

export class OutputCache {
  private entries = new Map<string, Cached>();

  /** Each node's signature; a node on a cycle (never run) gets one that matches nothing. */
  signatures(graph: Graph, files: ComfyFiles): Map<string, string> {
    const sigs = new Map<string, string>();
    const visiting = new Set<string>();
    const sign = (id: string): string => {
      const known = sigs.get(id);
      if (known) return known;
      const node = graph[id];
      // A node whose IS_CHANGED is the time (SaveImageWebsocket) runs every time.
      if (!node || visiting.has(id) || ALWAYS_CHANGED.has(node.class_type)) return `changed:${id}:${Math.random()}`;
      visiting.add(id);
      const inputs = Object.keys(node.inputs)
        .sort()
        .map((k) => {
          const v = node.inputs[k];
          return [k, Array.isArray(v) && v.length === 2 ? ["link", sign(String(v[0])), v[1]] : v];
        });
      const file = node.class_type === "LoadImage" ? files.resolve(String(node.inputs.image)) : undefined;
      const sig = sha(JSON.stringify([node.class_type, inputs, file ? sha(file) : null]));
      visiting.delete(id);
      sigs.set(id, sig);
      return sig;
    };
    for (const id of Object.keys(graph)) sign(id);
    return sigs;
  }

  get(sig: string | undefined): Cached | undefined {
    return sig === undefined ? undefined : this.entries.get(sig);
  }

  /** After a prompt: what it reused and what it ran, nothing older. */
  keep(sigs: Map<string, string>, fresh: Map<string, Cached>): void {
    const next = new Map<string, Cached>();
    for (const sig of sigs.values()) {
      const entry = fresh.get(sig) ?? this.entries.get(sig);
      if (entry) next.set(sig, entry);
    }
    this.entries = next;
  }
}

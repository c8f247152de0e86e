/**
 * Where a `workflow` job may run: a backend whose models include every `ckpt_name` its graph
 * loads. A backend with a `models` list serves those; one without serves what it lists itself
 * (ComfyUI's `/object_info`), and one that could not say yet may serve anything (the job finds out).
 */
import { reportedModels, SUBMIT_WAIT_MS } from "../backends/catalog";
import { fittingBackends, modelKey } from "../backends/models";
import type { BackendConfig } from "../config";
import type { Env } from "../env";
import { invalid } from "../errors";
import type { Workflow } from "./spec";
import { graphCheckpoints } from "./workflow-graph";

/** The names a backend has for its checkpoints, or undefined when it cannot be told (no list yet). */
async function checkpointKeys(env: Env, b: BackendConfig): Promise<Set<string> | undefined> {
  if (b.models) return new Set(b.models.map(modelKey));
  const listed = await reportedModels(env, b, SUBMIT_WAIT_MS);
  return listed.length ? new Set(listed.flatMap((m) => [modelKey(m.title), modelKey(m.model_name)])) : undefined;
}

/**
 * The backends that can run `graph` (a pin allows only itself), or a 422 naming the first node
 * whose checkpoint none of them has. `field` is where the client put the graph.
 */
export async function workflowBackends(env: Env, all: BackendConfig[], graph: Workflow, pin: string | undefined, field: string): Promise<BackendConfig[]> {
  const candidates = fittingBackends(all, { type: "workflow", backend: pin });
  if (!candidates.length) throw invalid(pin ? "backend" : field, pin ? `backend "${pin}" does not run workflow jobs` : "no backend runs workflow jobs");
  const wanted = graphCheckpoints(graph);
  if (!wanted.length) return candidates;
  const keys = await Promise.all(candidates.map((b) => checkpointKeys(env, b)));
  const fits = candidates.filter((_, i) => {
    const has = keys[i];
    return !has || wanted.every((w) => has.has(modelKey(w.name)));
  });
  if (fits.length) return fits;
  const at = (w: { node: string }) => [field, w.node, "inputs", "ckpt_name"].filter(Boolean).join(".");
  const unknown = wanted.find((w) => keys.every((has) => has && !has.has(modelKey(w.name))));
  if (unknown) throw invalid(at(unknown), `unknown checkpoint "${unknown.name}": ${pin ? `backend "${pin}" does not list it` : "no backend lists it"}`);
  const [first] = wanted;
  throw invalid(first ? at(first) : field, "no one backend has every checkpoint the graph loads");
}

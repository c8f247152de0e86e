import type { BackendConfig, JobType } from "../config";
import { comfySampler } from "./comfy-graphs/samplers";

/** A model's identity for matching: no `[hash]` suffix, no checkpoint extension, no case. */
export function modelKey(name: string): string {
  return name
    .trim()
    .replace(/\s*\[[0-9a-f]+\]$/i, "")
    .replace(/\.(safetensors|ckpt)$/i, "")
    .toLowerCase();
}

/** A ComfyUI backend runs a canonical job through a graph Easel builds: only with a sampler ComfyUI has. */
const runsSampler = (backend: BackendConfig, sampler: string | undefined): boolean =>
  (backend.kind !== "comfyui" && backend.kind !== "runpod-comfyui") || comfySampler(sampler) !== undefined;

export function servesModel(backend: BackendConfig, model: string | undefined): boolean {
  if (!model || !backend.models) return true;
  const key = modelKey(model);
  return backend.models.some((m) => modelKey(m) === key);
}

/**
 * The backends a job may run on, in configuration order. A pin allows only that backend; an
 * `ENDPOINTS` pin (`pinOverridesModels`) runs there whatever model the backend lists, as a real
 * endpoint serves what it was deployed with. `among` is the set intake chose from what the backends
 * list (a workflow's checkpoints, src/jobs/workflow-routing.ts): no other backend fits. A ComfyUI
 * backend fits a job whose A1111 `sampler` it has a match for.
 */
export function fittingBackends(
  all: BackendConfig[],
  job: { type: JobType; model?: string; sampler?: string; backend?: string; pinOverridesModels?: boolean; among?: string[] },
): BackendConfig[] {
  return all.filter(
    (b) =>
      (!job.backend || b.name === job.backend) &&
      (!job.among || job.among.includes(b.name)) &&
      b.types.includes(job.type) &&
      runsSampler(b, job.sampler) &&
      ((job.backend !== undefined && job.pinOverridesModels === true) || servesModel(b, job.model)),
  );
}

/** The backend's own spelling of a model (its configured title) when it lists one, else the name as asked. */
export function backendModelName(backend: BackendConfig, model: string | undefined): string | undefined {
  if (!model) return undefined;
  const key = modelKey(model);
  return backend.models?.find((m) => modelKey(m) === key) ?? model;
}

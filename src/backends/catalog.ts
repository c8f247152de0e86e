import { config, type BackendConfig, type BackendKind } from "../config";
import type { Env } from "../env";
import { adapterFor } from ".";
import { modelKey } from "./models";
import type { ModelInfo } from "./types";

const LIST_TIMEOUT_MS = 5_000;
/**
 * How long a backend's own list is kept, per isolate. Listing a RunPod endpoint runs a billed
 * `getModels` job (and may wake a cold worker), so its list is kept for an hour; A1111's is free.
 */
const LISTED_TTL_MS: Record<BackendKind, number> = { a1111: 60_000, runpod: 60 * 60_000, cerebrium: 60 * 60_000 };
/** A backend that could not say (down, timed out, a cold RunPod endpoint) is asked again only after this. */
const UNKNOWN_TTL_MS: Record<BackendKind, number> = { a1111: 10_000, runpod: 5 * 60_000, cerebrium: 5 * 60_000 };

/** Settled answers only: a promise made in one request must not be awaited by another. */
const reported = new Map<string, { at: number; models: ModelInfo[] }>();

export type CatalogEntry = { model: ModelInfo; backends: string[] };

const configured = (b: BackendConfig, m: string): ModelInfo => ({ title: m, model_name: modelKey(m), hash: null, sha256: null, filename: m, config: null, backend: b.name });

/** What a backend says it serves, cached as above; empty when it could not say. */
export async function reportedModels(b: BackendConfig): Promise<ModelInfo[]> {
  const key = JSON.stringify(b);
  const now = Date.now();
  const hit = reported.get(key);
  if (hit && now - hit.at < (hit.models.length ? LISTED_TTL_MS : UNKNOWN_TTL_MS)[b.kind]) return hit.models;
  const models = await adapterFor(b)
    .listModels(AbortSignal.timeout(LIST_TIMEOUT_MS))
    .catch((): ModelInfo[] => []);
  reported.set(key, { at: Date.now(), models });
  return models;
}

/** Forgets every backend's answer (A1111's refresh-checkpoints), so the next read asks again. */
export function forgetReportedModels(): void {
  reported.clear();
}

/**
 * One backend's models, and whether it is known what it serves. An A1111 backend is asked for its
 * own list even when `models` restricts it, so each model carries the title A1111 reports
 * (`name.safetensors [hash]`), which is what its options say after a switch; a configured name it
 * does not list (or a backend that does not answer) stays as configured. A backend that serves any
 * model and gave no list (down, or a cold RunPod endpoint) is not known: an empty answer counts as
 * none, as a backend serves some model.
 */
async function backendModels(b: BackendConfig): Promise<{ models: ModelInfo[]; known: boolean }> {
  const asked = b.kind === "a1111" || !b.models ? await reportedModels(b) : [];
  if (!b.models) return { models: asked, known: asked.length > 0 };
  return { models: b.models.map((m) => asked.find((r) => modelKey(r.title) === modelKey(m) || modelKey(r.model_name) === modelKey(m)) ?? configured(b, m)), known: true };
}

/**
 * Models across every backend, each under the first title a backend reports for it; `unknown`
 * names the backends that may serve a model missing from the list.
 */
export async function modelCatalog(env: Env): Promise<{ models: CatalogEntry[]; unknown: string[] }> {
  const backends = config.backends(env);
  const lists = await Promise.all(backends.map(backendModels));
  const byKey = new Map<string, CatalogEntry>();
  for (const m of lists.flatMap((l) => l.models)) {
    const key = modelKey(m.title);
    const seen = byKey.get(key);
    if (seen) {
      if (!seen.backends.includes(m.backend)) seen.backends.push(m.backend);
    } else byKey.set(key, { model: m, backends: [m.backend] });
  }
  return { models: [...byKey.values()], unknown: backends.filter((_, i) => !lists[i]?.known).map((b) => b.name) };
}

export async function listModels(env: Env): Promise<CatalogEntry[]> {
  return (await modelCatalog(env)).models;
}

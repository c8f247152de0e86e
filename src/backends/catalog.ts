import { LIST_TIMEOUT_MS } from "../contracts/scheduler";
import { config, type BackendConfig } from "../config";
import type { Env } from "../env";
import { modelKey } from "./models";
import type { ModelInfo } from "./types";
import { schedulerStub } from "../schedulers";

/**
 * How long a submit's model check waits on a backend that has never listed its models: past it,
 * the backend counts as not known (the job finds out), and the ask goes on in its scheduler.
 */
export const SUBMIT_WAIT_MS = 1_000;
/** Listings (`/v1/models`, A1111's `sd-models`) wait for the backend's own time bound. */
export const LISTING_WAIT_MS = LIST_TIMEOUT_MS;

/**
 * Each backend's list is kept by its scheduler object (durable-objects/backend-catalog.ts), once
 * for the deployment; this isolate keeps settled answers only a few seconds, to spare the hop.
 */
const FRONT_TTL_MS = 5_000;
/** Settled answers only: a promise made in one request must not be awaited by another. */
const front = new Map<string, { at: number; models: ModelInfo[] }>();


export type CatalogEntry = { model: ModelInfo; backends: string[] };

const configured = (b: BackendConfig, m: string): ModelInfo => ({ title: m, model_name: modelKey(m), hash: null, sha256: null, filename: m, config: null, backend: b.name });

/** What a backend says it serves; empty when it could not say (or not within `waitMs`). */
export async function reportedModels(env: Env, b: BackendConfig, waitMs: number): Promise<ModelInfo[]> {
  const key = JSON.stringify(b);
  const hit = front.get(key);
  if (hit && Date.now() - hit.at < FRONT_TTL_MS) return hit.models;
  // A scheduler that cannot be reached (a deploy resetting objects) leaves the backend unknown, as a silent backend does.
  const answer = await schedulerStub(env, b.name)
    .models(b, waitMs)
    .catch(() => undefined);
  if (answer?.settled) front.set(key, { at: Date.now(), models: answer.models });
  return answer?.models ?? [];
}

/** Forgets this isolate's answers (after A1111's refresh-checkpoints), so the next read has the backends' new checkpoints. */
export function forgetReportedModels(): void {
  front.clear();
}

/**
 * One backend's models, and whether it is known what it serves. An A1111 backend is asked for its
 * own list even when `models` restricts it, so each model carries the title A1111 reports
 * (`name.safetensors [hash]`), which is what its options say after a switch; a configured name it
 * does not list (or a backend that does not answer) stays as configured. A backend that serves any
 * model and gave no list (down, or a cold RunPod endpoint) is not known: an empty answer counts as
 * none, as a backend serves some model.
 */
async function backendModels(env: Env, b: BackendConfig, waitMs: number): Promise<{ models: ModelInfo[]; known: boolean }> {
  const asked = b.kind === "a1111" || !b.models ? await reportedModels(env, b, waitMs) : [];
  if (!b.models) return { models: asked, known: asked.length > 0 };
  return { models: b.models.map((m) => asked.find((r) => modelKey(r.title) === modelKey(m) || modelKey(r.model_name) === modelKey(m)) ?? configured(b, m)), known: true };
}

/**
 * Models across every backend, each under the first title a backend reports for it; `unknown`
 * names the backends that may serve a model missing from the list. A backend is waited on `waitMs`
 * at most when it never listed its models yet.
 */
export async function modelCatalog(env: Env, waitMs = LISTING_WAIT_MS): Promise<{ models: CatalogEntry[]; unknown: string[] }> {
  const backends = config.backends(env);
  const lists = await Promise.all(backends.map((b) => backendModels(env, b, waitMs)));
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

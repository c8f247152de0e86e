/** The models across backends as the dialects name them, and the 422 for one nobody serves. */
import { listModels } from "../backends/catalog";
import { modelKey } from "../backends/models";
import type { ModelInfo } from "../backends/types";
import type { Env } from "../env";
import { invalid } from "../errors";

type Catalog = { model: ModelInfo; backends: string[] }[];

let cached: { at: number; raw: string | undefined; models: Catalog } | undefined;
const CATALOG_TTL_MS = 60_000;

/**
 * Cached briefly: checking a model name must not cost a call to every backend each time. An empty
 * list (every backend unreachable) is not kept, or each model would be unknown for a minute.
 */
export async function cachedModels(env: Env): Promise<Catalog> {
  if (cached && cached.raw === env.BACKENDS && Date.now() - cached.at < CATALOG_TTL_MS) return cached.models;
  const models = await listModels(env);
  if (models.length) cached = { at: Date.now(), raw: env.BACKENDS, models };
  return models;
}

/** Forgets the cached list (A1111's refresh-checkpoints), so the next read asks the backends. */
export function forgetModels(): void {
  cached = undefined;
}

/** The catalog's title for a model name (any of its spellings), or undefined when no backend has it. */
export async function modelTitle(env: Env, name: string): Promise<string | undefined> {
  const key = modelKey(name);
  return (await cachedModels(env)).find(({ model }) => modelKey(model.title) === key || modelKey(model.model_name) === key)?.model.title;
}

/** A1111 and SD-on-EKS refuse a model no backend has (seed 001): a 422 naming the client's field. */
export async function requireKnownModel(env: Env, name: string | undefined, field: string): Promise<void> {
  if (!name) return;
  const key = modelKey(name);
  const known = (await cachedModels(env)).some(({ model }) => modelKey(model.title) === key || modelKey(model.model_name) === key);
  if (!known) throw invalid(field, `unknown model "${name}"`);
}

/** The models across backends as the dialects name them (the 422 for one nobody serves is the core's: src/jobs/models.ts). */
import { modelCatalog, type CatalogEntry } from "../backends/catalog";
import { modelKey } from "../backends/models";
import type { Env } from "../env";

/** The catalog, whose per-backend answers are kept by each backend's scheduler (src/backends/catalog.ts): no backend call per request. */
export async function cachedModels(env: Env): Promise<CatalogEntry[]> {
  return (await modelCatalog(env)).models;
}

/** The catalog's title for a model name (any of its spellings), or undefined when no backend has it. */
export async function modelTitle(env: Env, name: string): Promise<string | undefined> {
  const key = modelKey(name);
  return (await cachedModels(env)).find(({ model }) => modelKey(model.title) === key || modelKey(model.model_name) === key)?.model.title;
}

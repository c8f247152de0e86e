/** The models across backends as the dialects name them, and the 422 for one nobody serves. */
import { modelCatalog, refreshReportedModels, SUBMIT_WAIT_MS, type CatalogEntry } from "../backends/catalog";
import { modelKey } from "../backends/models";
import type { Env } from "../env";
import { invalid } from "../errors";

/** The catalog, whose per-backend answers are kept by each backend's scheduler (src/backends/catalog.ts): no backend call per request. */
export async function cachedModels(env: Env): Promise<CatalogEntry[]> {
  return (await modelCatalog(env)).models;
}

/** Lists the A1111 backends afresh (A1111's refresh-checkpoints), so the next read has what they rescanned. */
export async function refreshModels(env: Env): Promise<void> {
  await refreshReportedModels(env);
}

/** The catalog's title for a model name (any of its spellings), or undefined when no backend has it. */
export async function modelTitle(env: Env, name: string): Promise<string | undefined> {
  const key = modelKey(name);
  return (await cachedModels(env)).find(({ model }) => modelKey(model.title) === key || modelKey(model.model_name) === key)?.model.title;
}

/**
 * A1111 and SD-on-EKS refuse a model no backend has (seed 001): a 422 naming the client's field.
 * Only when every backend could say what it serves: a backend that could not (down, or a cold
 * RunPod endpoint answering nothing yet) may well serve it, and the job finds out. A backend that
 * never listed its models is waited on SUBMIT_WAIT_MS at most: a submit is not held by a slow list.
 */
export async function requireKnownModel(env: Env, name: string | undefined, field: string): Promise<void> {
  if (!name) return;
  const key = modelKey(name);
  const { models, unknown } = await modelCatalog(env, SUBMIT_WAIT_MS);
  const known = models.some(({ model }) => modelKey(model.title) === key || modelKey(model.model_name) === key);
  if (!known && !unknown.length) throw invalid(field, `unknown model "${name}"`);
}

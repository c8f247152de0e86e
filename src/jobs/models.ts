/** The one rule for a model nobody serves: a 422 naming the client's field, applied by intake (or early, by a dialect that must). */
import { forgetReportedModels, modelCatalog, SUBMIT_WAIT_MS } from "../backends/catalog";
import { modelKey } from "../backends/models";
import type { Env } from "../env";
import { invalid } from "../errors";

/**
 * A1111, RunPod's A1111 worker and SD-on-EKS refuse a model no backend has (seed 001): a 422 naming
 * the client's field. Only when every backend could say what it serves: a backend that could not
 * (down, or a cold RunPod endpoint answering nothing yet) may well serve it, and the job finds out.
 * A backend that never listed its models is waited on SUBMIT_WAIT_MS at most: a submit is not held
 * by a slow list.
 */
export async function requireKnownModel(env: Env, name: string | undefined, field: string): Promise<void> {
  if (!name) return;
  const key = modelKey(name);
  const knownIn = ({ models }: Awaited<ReturnType<typeof modelCatalog>>) => models.some(({ model }) => modelKey(model.title) === key || modelKey(model.model_name) === key);
  const catalog = await modelCatalog(env, SUBMIT_WAIT_MS);
  if (knownIn(catalog) || catalog.unknown.length) return;
  // This isolate's copy may predate a refresh-checkpoints another isolate ran: the backends'
  // scheduler objects are asked again before the model is called unknown.
  forgetReportedModels();
  const fresh = await modelCatalog(env, SUBMIT_WAIT_MS);
  if (!knownIn(fresh) && !fresh.unknown.length) throw invalid(field, `unknown model "${name}"`);
}

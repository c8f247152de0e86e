import { config, type BackendConfig } from "../config";
import type { Env } from "../env";
import { adapterFor } from ".";
import { modelKey } from "./models";
import type { ModelInfo } from "./types";

const LIST_TIMEOUT_MS = 5_000;

const configured = (b: BackendConfig, m: string): ModelInfo => ({ title: m, model_name: modelKey(m), hash: null, sha256: null, filename: m, config: null, backend: b.name });

/**
 * One backend's models. An A1111 backend is asked for its own list even when `models` restricts
 * it, so each model carries the title A1111 reports (`name.safetensors [hash]`), which is what its
 * options say after a switch; a configured name it does not list (or a backend that does not
 * answer) stays as configured.
 */
async function backendModels(b: BackendConfig): Promise<ModelInfo[]> {
  const reported = b.kind === "a1111" || !b.models ? await adapterFor(b).listModels(AbortSignal.timeout(LIST_TIMEOUT_MS)).catch(() => []) : [];
  if (!b.models) return reported;
  return b.models.map((m) => reported.find((r) => modelKey(r.title) === modelKey(m) || modelKey(r.model_name) === modelKey(m)) ?? configured(b, m));
}

/** Models across every backend, each under the first title a backend reports for it. */
export async function listModels(env: Env): Promise<{ model: ModelInfo; backends: string[] }[]> {
  const lists = await Promise.all(config.backends(env).map(backendModels));
  const byKey = new Map<string, { model: ModelInfo; backends: string[] }>();
  for (const m of lists.flat()) {
    const key = modelKey(m.title);
    const seen = byKey.get(key);
    if (seen) {
      if (!seen.backends.includes(m.backend)) seen.backends.push(m.backend);
    } else byKey.set(key, { model: m, backends: [m.backend] });
  }
  return [...byKey.values()];
}

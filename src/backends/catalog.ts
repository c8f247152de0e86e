import { config } from "../config";
import type { Env } from "../env";
import { adapterFor } from ".";
import { modelKey } from "./models";
import type { ModelInfo } from "./types";

const LIST_TIMEOUT_MS = 5_000;

/** Models across every backend: configured lists as they are, the others as the backend reports. */
export async function listModels(env: Env): Promise<{ model: ModelInfo; backends: string[] }[]> {
  const lists = await Promise.all(
    config.backends(env).map(async (b): Promise<ModelInfo[]> =>
      b.models
        ? b.models.map((m) => ({ title: m, model_name: modelKey(m), hash: null, sha256: null, filename: m, config: null, backend: b.name }))
        : adapterFor(b)
            .listModels(AbortSignal.timeout(LIST_TIMEOUT_MS))
            .catch(() => []),
    ),
  );
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

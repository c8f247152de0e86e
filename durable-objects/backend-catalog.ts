import { adapterFor } from "../src/backends";
import type { ModelInfo } from "../src/backends/types";
import type { BackendConfig, BackendKind } from "../src/config";
import { LIST_TIMEOUT_MS, type CatalogAnswer } from "../src/contracts/scheduler";
import { sha256Hex } from "../src/lib/crypto";
import { withDeadline } from "../src/lib/deadline";

/**
 * How long a backend's list is kept. Listing a RunPod endpoint runs a billed `getModels` job (and
 * may wake a cold worker), so its list is kept for an hour; A1111's is free.
 */
const LISTED_TTL_MS: Record<BackendKind, number> = { a1111: 60_000, runpod: 60 * 60_000, cerebrium: 60 * 60_000, comfyui: 60_000, "runpod-comfyui": 60 * 60_000 };
/** A backend that could not say (down, timed out, a cold RunPod endpoint) is asked again only after this. */
const UNKNOWN_TTL_MS: Record<BackendKind, number> = { a1111: 10_000, runpod: 5 * 60_000, cerebrium: 5 * 60_000, comfyui: 10_000, "runpod-comfyui": 5 * 60_000 };

type Row = { config: string; models: string; fetched_at: number | null; asked_at: number; answered: number };

/**
 * One backend's model list, kept in its scheduler object so the whole deployment asks the backend
 * at most once per TTL (every isolate asking on its own would run a billed RunPod job each).
 * Readers never wait on a renewal: the last list is served while it runs, and askers at the same
 * time share one ask.
 */
export class BackendCatalog {
  /** Asks under way, by configuration: an object's requests may share a promise. */
  private readonly asking = new Map<string, Promise<void>>();

  constructor(private readonly sql: SqlStorage) {
    // One row: the configuration it was listed under (a hash, so no key is stored), the last list
    // the backend gave (kept through failed asks), and whether the last ask gave one.
    sql.exec("CREATE TABLE IF NOT EXISTS catalog (id INTEGER PRIMARY KEY CHECK (id = 1), config TEXT NOT NULL, models TEXT NOT NULL, fetched_at INTEGER, asked_at INTEGER NOT NULL, answered INTEGER NOT NULL)");
  }

  /**
   * The backend's list: what is kept, renewed in the background once due; when nothing is listed
   * yet, the first ask is awaited `waitMs` at most (it goes on and fills the list for later reads).
   */
  async read(b: BackendConfig, waitMs: number): Promise<CatalogAnswer> {
    const key = await configKey(b);
    const row = this.row(key);
    const models = row ? (JSON.parse(row.models) as ModelInfo[]) : [];
    if (row && Date.now() - row.asked_at < (row.answered ? LISTED_TTL_MS : UNKNOWN_TTL_MS)[b.kind]) return { models, settled: true };
    const ask = this.ask(b, key);
    if (models.length) return { models, settled: true };
    if (!(await within(ask, waitMs))) return { models: [], settled: false };
    return { models: JSON.parse(this.row(key)?.models ?? "[]") as ModelInfo[], settled: true };
  }

  /** Asks the backend now (A1111's refresh-checkpoints) and answers its list once stored. */
  async refresh(b: BackendConfig): Promise<ModelInfo[]> {
    const key = await configKey(b);
    await this.ask(b, key);
    return JSON.parse(this.row(key)?.models ?? "[]") as ModelInfo[];
  }

  private row(key: string): Row | undefined {
    return this.sql.exec<Row>("SELECT config, models, fetched_at, asked_at, answered FROM catalog WHERE id = 1 AND config = ?", key).toArray()[0];
  }

  /** One ask at a time per configuration; bounded by LIST_TIMEOUT_MS. */
  private ask(b: BackendConfig, key: string): Promise<void> {
    const running = this.asking.get(key);
    if (running) return running;
    const ask = withDeadline(LIST_TIMEOUT_MS, (signal) => adapterFor(b).listModels(signal))
      .catch((): ModelInfo[] => [])
      .then((models) => this.store(key, models))
      .finally(() => this.asking.delete(key));
    this.asking.set(key, ask);
    return ask;
  }

  private store(key: string, models: ModelInfo[]): void {
    const now = Date.now();
    if (models.length) {
      this.sql.exec("INSERT OR REPLACE INTO catalog (id, config, models, fetched_at, asked_at, answered) VALUES (1, ?, ?, ?, ?, 1)", key, JSON.stringify(models), now, now);
    } else if (this.row(key)) {
      // No answer: the last list stays (better than none), asked again after UNKNOWN_TTL_MS.
      this.sql.exec("UPDATE catalog SET asked_at = ?, answered = 0 WHERE id = 1", now);
    } else {
      this.sql.exec("INSERT OR REPLACE INTO catalog (id, config, models, fetched_at, asked_at, answered) VALUES (1, ?, '[]', NULL, ?, 0)", key, now);
    }
  }
}

/** A backend's configuration as a key (a hash: no key of the backend's is stored). */
export const configKey = (b: BackendConfig): Promise<string> => sha256Hex(JSON.stringify(b));

/** Whether `p` settled within `ms`. */
async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

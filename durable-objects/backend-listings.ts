import { comfyCall } from "../src/backends/comfyui-api";
import type { BackendConfig } from "../src/config";
import type { ComfyListing } from "../src/contracts/scheduler";
import { withDeadline } from "../src/lib/deadline";

/** How long a listing is kept: node definitions a minute (as ComfyUI's front end keeps them), lists 30 s. */
const LISTED_TTL_MS = (path: ComfyListing): number => (path === "/object_info" ? 60_000 : 30_000);
/** No answer (down, slow, a folder it lacks) is kept only this long, so a server that comes back is seen soon. */
const SILENT_TTL_MS = 10_000;
const LISTING_TIMEOUT_MS = 5_000;

type Kept = { config: string; at: number; body: string | undefined };

/**
 * What a ComfyUI server lists about itself (`/object_info`, `/models`, a model folder,
 * `/embeddings`), kept here, in the backend's scheduler object, for the whole deployment. Every
 * tenant may read these as often as it likes, and isolates asking the server each on their own
 * (hundreds on Cloudflare) would pass one tenant's reads to a shared GPU server one for one. Readers at the
 * same time share one ask. Kept in memory only: node definitions run to megabytes, and an object
 * that restarted asks once more.
 */
export class BackendListings {
  /** By path: the paths are the server's own (see `read`), so this stays as small as its folder list. */
  private readonly kept = new Map<ComfyListing, Kept>();
  /** Asks under way: an object's requests may share a promise (a Worker's may not). */
  private readonly asking = new Map<string, Promise<string | undefined>>();

  /** The server's answer at `path` (200 only, unparsed); undefined when it gave none. */
  async read(b: BackendConfig, config: string, path: ComfyListing): Promise<string | undefined> {
    const folder = path.startsWith("/models/") ? path.slice("/models/".length) : undefined;
    // A client names the folder: one the server does not list is not asked for, so made-up names
    // reach the server not at all (ComfyUI answers them 404), and are not kept here either.
    if (folder !== undefined && !namesIn(await this.read(b, config, "/models")).includes(folder)) return undefined;
    const hit = this.kept.get(path);
    if (hit && hit.config === config && Date.now() - hit.at < (hit.body === undefined ? SILENT_TTL_MS : LISTED_TTL_MS(path))) return hit.body;
    const key = `${config}\n${path}`;
    const running = this.asking.get(key);
    if (running) return running;
    const ask = (async () => {
      try {
        const res = await withDeadline(LISTING_TIMEOUT_MS, (signal) => comfyCall(b, path, { timeoutMs: LISTING_TIMEOUT_MS, signal })).catch(() => undefined);
        const body = res?.ok && res.status === 200 ? res.body : undefined;
        this.kept.set(path, { config, at: Date.now(), body });
        return body;
      } finally {
        this.asking.delete(key);
      }
    })();
    this.asking.set(key, ask);
    return ask;
  }
}

/** The names a list answer holds (none when it is not a JSON list). */
function namesIn(body: string | undefined): string[] {
  try {
    const list: unknown = body === undefined ? undefined : JSON.parse(body);
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

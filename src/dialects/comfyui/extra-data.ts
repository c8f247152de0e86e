/**
 * A prompt's `extra_data`, as ComfyUI uses it: the nodes read it (`extra_pnginfo` for the workflow
 * saved in a PNG; Comfy.org's `api_key_comfy_org` / `auth_token_comfy_org` for API nodes), and the
 * history shows it, but never the Comfy.org credentials (execution.py drops them before it stores
 * an entry). Easel's own key, `webhook`, goes to no backend.
 */
import type { BackendCredentials } from "../../jobs/spec";
import { comfyError, type ComfyErrorBody } from "./translate";

/** What the backend may be sent besides the credentials: ComfyUI's UI workflow in `extra_pnginfo` can be large, but the job keeps it. */
const MAX_FORWARDED_CHARS = 1024 * 1024;
/** Longer than any Comfy.org key or token. */
const MAX_CREDENTIAL_CHARS = 8_192;
const CREDENTIALS = ["api_key_comfy_org", "auth_token_comfy_org"] as const;

export interface SplitExtraData {
  /** What the prompt's history, queue item and webhook show (`prompt[3]`): all but the credentials. */
  shown: Record<string, unknown>;
  /** What goes to a ComfyUI backend's `/prompt`: all but Easel's keys, the credentials and `client_id` (the backend's own). */
  forwarded: Record<string, unknown>;
  /** Sent to the backend, stored apart from the job and dropped at its end. */
  credentials: BackendCredentials | undefined;
  webhook: string | undefined;
}

export function splitExtraData(extra: Record<string, unknown>): SplitExtraData | { error: ComfyErrorBody } {
  const { webhook, client_id: _ownClientId, api_key_comfy_org, auth_token_comfy_org, ...rest } = extra;
  if (webhook !== undefined && typeof webhook !== "string") return { error: comfyError("invalid_prompt", "extra_data.webhook must be a URL string", "extra_data.webhook") };
  const credentials: BackendCredentials = {};
  for (const [name, value] of [["api_key_comfy_org", api_key_comfy_org], ["auth_token_comfy_org", auth_token_comfy_org]] as const) {
    if (value === undefined) continue;
    if (typeof value !== "string" || value.length > MAX_CREDENTIAL_CHARS) return { error: comfyError("invalid_prompt", `extra_data.${name} must be a string of at most ${MAX_CREDENTIAL_CHARS} characters`, `extra_data.${name}`) };
    credentials[name] = value;
  }
  if (JSON.stringify(rest).length > MAX_FORWARDED_CHARS) return { error: comfyError("invalid_prompt", `extra_data is over ${MAX_FORWARDED_CHARS} characters`, "extra_data") };
  const shown = Object.fromEntries(Object.entries(extra).filter(([name]) => !(CREDENTIALS as readonly string[]).includes(name)));
  return { shown, forwarded: rest, credentials: Object.keys(credentials).length ? credentials : undefined, webhook };
}

/** Plain calls to an A1111 backend's own API (auth, bounded time), for what is not a generation. */
import type { BackendConfig } from "../config";
import { basicAuth, callBackend, type BackendInit, type HttpResult } from "./http";

/** Basic auth when the backend has a username or password (A1111's --api-auth), else its key as Bearer. */
export function a1111Headers(config: BackendConfig): Record<string, string> {
  const h: Record<string, string> = { "content-type": "application/json" };
  if (config.username !== undefined || config.password !== undefined) {
    h.authorization = basicAuth(config.username ?? "", config.password ?? "");
  } else if (config.api_key) {
    h.authorization = `Bearer ${config.api_key}`;
  }
  return h;
}

/** One call to `path` on the backend; `body` makes it a POST of that JSON. */
export function a1111Call(config: BackendConfig, path: string, opts: { body?: unknown; timeoutMs: number; signal: AbortSignal }): Promise<HttpResult> {
  const init: BackendInit = opts.body === undefined ? { headers: a1111Headers(config) } : { method: "POST", headers: a1111Headers(config), body: JSON.stringify(opts.body) };
  return callBackend(config.url + path, init, opts.timeoutMs, opts.signal);
}

/** The backend's JSON answer to `path`, or undefined when it did not answer 200 with JSON. */
export async function a1111Json(config: BackendConfig, path: string, opts: { body?: unknown; timeoutMs: number; signal: AbortSignal }): Promise<unknown> {
  const res = await a1111Call(config, path, opts);
  if (!res.ok || res.status !== 200) return undefined;
  try {
    return JSON.parse(res.body) as unknown;
  } catch {
    return undefined;
  }
}

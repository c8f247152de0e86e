// The /v1 API with the signed-in key. The key lives in sessionStorage and travels only in the
// Authorization header.
import { refreshed, sayRefreshFailed } from "./dom.js";

const KEY_SLOT = "easel.apiKey";
export const key = () => sessionStorage.getItem(KEY_SLOT);
export const keep = (k) => sessionStorage.setItem(KEY_SLOT, k);
export const drop = () => sessionStorage.removeItem(KEY_SLOT);

/** Whether `k` can be sent at all: a header carries Latin-1 only, and no control characters. */
export const sendable = (k) => /^[\x20-\x7e\xa0-\xff]+$/.test(k);

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
  }
}

let refused = () => {};
/** What to do when the key is refused (401): set once by the page, which signs out. */
export const onRefused = (fn) => {
  refused = fn;
};

export async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { authorization: `Bearer ${key()}`, ...(init.body ? { "content-type": "application/json" } : {}), ...init.headers } });
  const body = await res.json().catch(() => null);
  if (res.status === 401) {
    refused();
    throw new ApiError(401, body);
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

/**
 * Runs `tick(signal)` now and every `ms` until the view is left; overlapping runs are skipped.
 * Leaving aborts the run in flight, so an answer read with an old key or for an old view is never shown.
 */
export function every(ms, tick) {
  let running = false;
  const abort = new AbortController();
  const run = async () => {
    if (running || abort.signal.aborted) return;
    running = true;
    try {
      await tick(abort.signal);
      if (!abort.signal.aborted) refreshed();
    } catch (err) {
      if (!abort.signal.aborted && !(err instanceof ApiError && err.status === 401)) sayRefreshFailed(err);
    } finally {
      running = false;
    }
  };
  run();
  const timer = setInterval(run, ms);
  return () => {
    abort.abort();
    clearInterval(timer);
  };
}

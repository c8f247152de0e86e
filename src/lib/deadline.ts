/**
 * A time bound whose timer goes away when the work ends. `AbortSignal.timeout` cannot be cleared,
 * and a pending timer keeps a Durable Object in memory (and, on Cloudflare, billed for its
 * duration): a 10-minute bound on a call that took 50 ms would hold the job's object 10 minutes.
 */
export interface Deadline {
  signal: AbortSignal;
  /** Ends the timer; the signal stays as it is. */
  clear(): void;
}

export function deadline(ms: number): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")), Math.max(1, Math.floor(ms)));
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** Runs `fn` with a signal that aborts after `ms` (or with `parent`), its timer cleared when `fn` settles. */
export async function withDeadline<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>, parent?: AbortSignal): Promise<T> {
  const d = deadline(ms);
  try {
    return await fn(parent ? AbortSignal.any([parent, d.signal]) : d.signal);
  } finally {
    d.clear();
  }
}

/** `work`, or a rejection once `signal` aborts: for a call (an RPC) that cannot be handed the signal itself. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

/**
 * A server closes a kept-alive connection once it has idled for its keep-alive timeout (5 s on
 * uvicorn, which A1111 runs on, and on Node); a request the runtime sends on that connection just
 * then fails at once, before the server read any of it. Such a failure is tried again, on another
 * connection, up to STALE_RETRIES times. Measured: 200 jobs sent 5 s after 1,000 others lost 22 and
 * 43 this way in two runs (with the circuit opened); none in two runs with the retries.
 */
const STALE_FAILURE_MS = 1_000;
const STALE_RETRIES = 2;

/** Calls `send` (a fetch whose body can be sent again) until it answers or fails in a way a stale connection cannot explain. */
export async function fetchPastStaleConnections(send: () => Promise<Response>, signal: AbortSignal): Promise<Response> {
  for (let tries = 0; ; tries++) {
    const started = Date.now();
    try {
      return await send();
    } catch (err) {
      if (signal.aborted || tries >= STALE_RETRIES || Date.now() - started > STALE_FAILURE_MS) throw err;
    }
  }
}

/**
 * A server closes a kept-alive connection once it has idled for its keep-alive timeout (5 s on
 * uvicorn, which A1111 runs on, and on Node); a request the runtime sends on that connection just
 * then fails at once, before the server read any of it. Such a failure is tried again, on another
 * connection, up to STALE_RETRIES times. Measured: 200 jobs sent 5 s after 1,000 others lost 22 and
 * 43 this way in two runs (with the circuit opened); none in two runs with the retries.
 *
 * A request that may start GPU work (a generation, a RunPod `/run`) is different: a connection cut
 * after the server read it looks the same, and sending it again would run it twice. Such a request
 * comes with `arrival`, asked after every failure; it is sent again only when the backend shows it
 * never got it.
 */
const STALE_FAILURE_MS = 1_000;
const STALE_RETRIES = 2;

/**
 * Where a request that failed in flight is: `absent` on the backend's word that it never got it,
 * `arrived` when it has it, `unknown` when it cannot be asked, `down` when it answers nothing at
 * all (a backend that refuses every connection runs nothing of ours: a plain failure, not resent).
 */
export type Arrival = "absent" | "arrived" | "unknown" | "down";

/** A request that may have started work failed in flight, and the backend did not show it never got it. */
export class MayHaveArrived extends Error {
  constructor(readonly arrival: "arrived" | "unknown", cause: unknown) {
    super(`the connection was lost after the request may have reached the backend (${arrival})`, { cause });
  }
}

/** Calls `send` (a fetch whose body can be sent again) until it answers or fails in a way a stale connection cannot explain. */
export async function fetchPastStaleConnections(send: () => Promise<Response>, signal: AbortSignal, arrival?: () => Promise<Arrival>): Promise<Response> {
  for (let tries = 0; ; tries++) {
    const started = Date.now();
    try {
      return await send();
    } catch (err) {
      if (signal.aborted) throw err;
      const fast = Date.now() - started <= STALE_FAILURE_MS;
      const where = arrival ? await arrival() : "absent";
      if (where === "arrived" || where === "unknown") throw new MayHaveArrived(where, err);
      if (where === "down" || tries >= STALE_RETRIES || !fast) throw err;
    }
  }
}

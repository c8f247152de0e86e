/**
 * How the soak's webhook receiver answers (bench/soak.ts): 503 while it is "down", then 200; or,
 * with `--receiver-faults hostile`, a hostile one once up: about 40% of deliveries answered 500,
 * 429 (Retry-After), 503, a 301 elsewhere, never answered, or their connection reset.
 */
import type { Delivery, Scripted } from "../test/e2e/support/receiver";

const FAULTS = ["500", "429", "503", "301", "hang", "reset"] as const;
type Fault = (typeof FAULTS)[number];
const FAULT_SHARE = 0.4;
/**
 * No webhook-id gets a fault once it has had this many refusals (the down window's 503s count), so
 * a hostile receiver never needs more attempts than the down window alone or 3, and the soak's
 * retry schedule (7 attempts) always ends in a 2xx: a missing event is the gateway's, not ours.
 */
const MAX_REFUSALS_PER_ID = 3;

const answerOf: Record<Fault, Scripted> = {
  "500": { status: 500, body: "boom" },
  "429": { status: 429, headers: { "retry-after": "2" }, body: "slow down" },
  "503": { status: 503, body: "unavailable" },
  // Not a 2xx, and the gateway must not follow it: nothing listens there.
  "301": { status: 301, headers: { location: "http://127.0.0.1:1/elsewhere" } },
  hang: "hang",
  reset: "reset",
};

export function receiverAnswers(opts: { hostile: boolean; upAt: () => number }) {
  const refusals = new Map<string, number>();
  const faults = new Map<Fault, number>(FAULTS.map((f) => [f, 0]));
  const refuse = (d: Delivery) => {
    const id = d.headers["webhook-id"] ?? "";
    refusals.set(id, (refusals.get(id) ?? 0) + 1);
  };
  function answer(d: Delivery): Scripted {
    if (d.receivedAt < opts.upAt()) {
      if (opts.hostile) refuse(d);
      return { status: 503 };
    }
    if (!opts.hostile || (refusals.get(d.headers["webhook-id"] ?? "") ?? 0) >= MAX_REFUSALS_PER_ID || Math.random() >= FAULT_SHARE) return { status: 200 };
    const fault = FAULTS[Math.floor(Math.random() * FAULTS.length)] as Fault;
    refuse(d);
    faults.set(fault, (faults.get(fault) ?? 0) + 1);
    return answerOf[fault];
  }
  /** The hostile receiver's faults by kind, for the figures. */
  const summary = () => [...faults.entries()].map(([f, n]) => `${f} ${n}`).join(", ");
  return { answer, summary };
}

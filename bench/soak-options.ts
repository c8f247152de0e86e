/**
 * `npm run soak`'s flags (bench/soak.ts). Without the opt-in chaos flags (`--receiver-faults`,
 * `--burst`, `--cancel-storm`, `--comfy-error-rate`, `--runpod-completed-errors`,
 * `--idempotency-races`, `--fronts all`) a run is the one CI has always run.
 */
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    jobs: { type: "string" },
    rate: { type: "string" },
    "receiver-down-s": { type: "string" },
    "backend-down-s": { type: "string" },
    "drain-s": { type: "string" },
    "cancel-every": { type: "string" },
    kills: { type: "string" },
    "backend-fault": { type: "string" },
    "receiver-faults": { type: "string" },
    burst: { type: "string" },
    "cancel-storm": { type: "boolean" },
    "comfy-error-rate": { type: "string" },
    "runpod-completed-errors": { type: "boolean" },
    "idempotency-races": { type: "boolean" },
    fronts: { type: "string" },
  },
});
export const JOBS = Number(args.jobs ?? 1000);
export const RATE = Number(args.rate ?? 20);
export const RECEIVER_DOWN_MS = Number(args["receiver-down-s"] ?? 60) * 1000;
export const BACKEND_DOWN_MS = Number(args["backend-down-s"] ?? 20) * 1000;
export const DRAIN_MS = Number(args["drain-s"] ?? 600) * 1000;
/** Every n-th job is canceled shortly after it is accepted. */
export const CANCEL_EVERY = Number(args["cancel-every"] ?? 20);
/** Hard kills of the gateway, spread over the submit window. */
export const KILLS = Number(args.kills ?? 2);
/** How the spare backend's outage shows: refused connections, calls never answered, or calls run and their connection then dropped. */
const OUTAGES = {
  down: { during: { down: true }, after: { down: false } },
  hang: { during: { hang: true }, after: { hang: false } },
  drop: { during: { dropAfterAccept: 1_000_000 }, after: { dropAfterAccept: 0 } },
} as const;
const BACKEND_FAULT = args["backend-fault"] ?? "down";
if (!(BACKEND_FAULT in OUTAGES)) throw new Error("soak: --backend-fault must be down, hang or drop");
export const OUTAGE = OUTAGES[BACKEND_FAULT as keyof typeof OUTAGES];
for (const [name, v] of Object.entries({ JOBS, RATE, RECEIVER_DOWN_MS, BACKEND_DOWN_MS, DRAIN_MS, CANCEL_EVERY, KILLS })) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`soak: ${name} must be a positive number`);
}

// ---- opt-in chaos ----
const RECEIVER_FAULTS = args["receiver-faults"] ?? "none";
if (RECEIVER_FAULTS !== "none" && RECEIVER_FAULTS !== "hostile") throw new Error("soak: --receiver-faults must be none or hostile");
/** Once up, the receiver answers some deliveries 500/429/503/301, hangs or resets (bench/soak-receiver.ts). */
export const HOSTILE_RECEIVER = RECEIVER_FAULTS === "hostile";
/** This many jobs, taken out of the steady rate, are all sent within one second at 60% of the submit window. */
export const BURST = Number(args.burst ?? 0);
if (!Number.isInteger(BURST) || BURST < 0 || BURST > JOBS) throw new Error("soak: --burst must be a whole number from 0 to --jobs");
/** One job in ten is also canceled through its own API, half at once and half while it may be running. */
export const CANCEL_STORM = args["cancel-storm"] === true;
/** The share of ComfyUI prompts that end in `execution_error`. */
export const COMFY_ERROR_RATE = Number(args["comfy-error-rate"] ?? 0.05);
if (!(COMFY_ERROR_RATE >= 0 && COMFY_ERROR_RATE <= 1)) throw new Error("soak: --comfy-error-rate must be from 0 to 1");
/** RunPod answers COMPLETED with an error inside its output for 3 s of every 12 s of the submit window: a failure in disguise. */
export const RUNPOD_COMPLETED_ERRORS = args["runpod-completed-errors"] === true;
/** One `/v1` Idempotency-Key in four is sent twice at once and again 0–3 s later: every answer must name the same job. */
export const IDEMPOTENCY_RACES = args["idempotency-races"] === true;
const FRONTS = args.fronts ?? "webhook";
if (FRONTS !== "webhook" && FRONTS !== "all") throw new Error("soak: --fronts must be webhook or all");
/**
 * More fronts in the rotation (bench/soak-jobs.ts): a pinned /v1 job, RunPod's `/runsync`, a
 * Replicate prediction held open, ComfyUI's `/prompt` with each tenant's socket; and the jobs the
 * gateway lists (a held-open answer cut by a kill leaves a job the client never learned) must end.
 */
export const WIDE_FRONTS = FRONTS === "all";

/** The flags as printed above the figures; chaos ones only when set, so a default run prints what it always did. */
export function describe(): Record<string, number | string> {
  return {
    jobs: JOBS,
    rate: RATE,
    receiver_down_s: RECEIVER_DOWN_MS / 1000,
    backend_down_s: BACKEND_DOWN_MS / 1000,
    ...(HOSTILE_RECEIVER ? { receiver_faults: "hostile" } : {}),
    ...(BURST ? { burst: BURST } : {}),
    ...(CANCEL_STORM ? { cancel_storm: "on" } : {}),
    ...(args["comfy-error-rate"] !== undefined ? { comfy_error_rate: COMFY_ERROR_RATE } : {}),
    ...(RUNPOD_COMPLETED_ERRORS ? { runpod_completed_errors: "on" } : {}),
    ...(IDEMPOTENCY_RACES ? { idempotency_races: "on" } : {}),
    ...(WIDE_FRONTS ? { fronts: "all" } : {}),
    ...(KILLS !== 2 ? { kills: KILLS } : {}),
  };
}

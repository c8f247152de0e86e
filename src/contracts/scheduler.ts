/** What a job object, the Worker and a backend's scheduler (durable-objects/backend-scheduler.ts) agree on across RPC. */
import type { ModelInfo } from "../backends/types";

/**
 * How long a slot lasts without renewal. A job renews the slots it uses on its heartbeat (every
 * few seconds while it runs or waits for a backend), so a slot whose job vanished or whose release
 * was lost comes back within this time, not after a whole backend timeout.
 */
export const SLOT_LEASE_MS = 60_000;

/** A backend's own list is never awaited longer than this (a cold RunPod endpoint may take minutes). */
export const LIST_TIMEOUT_MS = 5_000;

export type AcquireResult =
  | { status: "granted"; probe: boolean }
  | { status: "queued" }
  | { status: "busy"; load: number }
  | { status: "open"; retry_at: number };

export type AttemptOutcome = "success" | "failure" | "neutral";
/**
 * A slot given back before its attempt's verdict is known (a synchronous backend answered 200, its
 * body not read yet): the verdict follows through `judge`. Its `recent` row waits as `awaiting`.
 */
export type ReleaseOutcome = AttemptOutcome | "later";

export interface BackendStatus {
  active: number;
  waiting: number;
  consecutive_failures: number;
  open_until: number | null;
  circuit: "closed" | "open" | "half_open";
  /** Over the last attempts that succeeded or failed (canceled and refused-as-invalid ones say nothing of the backend). */
  recent: { jobs: number; success_rate: number | null; run_ms_p50: number | null };
  /** Requests from jobs (acquire, release, judge, renew, orphan) since the scheduler's object last started. */
  requests: number;
}

/** `settled`: the answer of a finished ask (possibly one being renewed); not while the first ask is still out. */
export type CatalogAnswer = { models: ModelInfo[]; settled: boolean };

/** What A1111's `refresh-checkpoints` / `refresh-loras` rescan. */
export type RescanKind = "checkpoints" | "loras";

/** A ComfyUI server's listings the gateway passes on (a model folder only when the server lists it). */
export type ComfyListing = "/object_info" | "/models" | "/embeddings" | `/models/${string}`;

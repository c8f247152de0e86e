/** What the Worker and the tenant object (durable-objects/tenant.ts) agree on across RPC. */
import type { JobType } from "../config";
import type { JobStatus } from "../schemas/job";

/** How long an Idempotency-Key is remembered, as the contract says. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;

/** One job in the tenant's index: what the list filters and orders on. The job object holds the rest. */
export interface IndexRow {
  id: string;
  created_at: number;
  status: JobStatus;
  type: JobType;
  track_id: string | null;
}

export interface IndexQuery {
  status?: JobStatus;
  type?: JobType;
  track_id?: string;
  /** Inclusive lower bound, ms. */
  created_after?: number;
  /** Exclusive upper bound, ms. */
  created_before?: number;
  /** Keyset position: only jobs strictly older than this (created_at, id) come back. */
  before?: { created_at: number; id: string };
  limit: number;
}

export type RateResult = { ok: boolean; remaining: number; reset_ms: number };

/** Refused: `verify` lists old active rows to check against their job objects (a lost update or a half-made job may hold a place). */
export type AdmitResult = { ok: true } | { ok: false; active: number; verify: IndexRow[] };

/** A RunPod job under its endpoint; `created_at` orders the rows of several shards. */
export type EndpointJob = { run_id: string; status: string; retried: number; created_at: number };
/** How many of an endpoint's jobs were last seen in `status`, and their retries. */
export type EndpointCount = { status: string; n: number; retried: number };

/** A synchronous A1111 call waiting on `run_id` since `created_at`. */
export type WaitingRun = { run_id: string; created_at: number };

export type ClaimScope = "idempotency" | "eks_task";

/** A key claimed for a run, noted in the run's shard so that its purge finds the key's shard. */
export type ClaimRef = { scope: ClaimScope; key: string };

export type ClaimResult = { status: "claimed"; runId: string } | { status: "existing"; runId: string } | { status: "conflict"; runId: string };

/**
 * The Durable Objects' RPC surfaces, as the Worker and the other objects call them. The classes
 * implement these (the compiler holds them to it), so the Worker types its stubs without importing
 * a Durable Object, and no import, not even a type, runs from `src/` into `durable-objects/`.
 */
import type { BackendProgress } from "../backends/types";
import type { BackendConfig } from "../config";
import type { JobSnapshot, Result } from "../jobs/results";
import type { CreateJob } from "../jobs/spec";
import type { Delivery, JobEvent, JobStatus } from "../schemas/job";
import type { CallbackBody } from "./job";
import type { AcquireResult, AttemptOutcome, BackendStatus, CatalogAnswer, ComfyListing, ReleaseOutcome, RescanKind } from "./scheduler";
import type { AdmitResult, ClaimRef, ClaimResult, ClaimScope, EndpointCount, EndpointJob, IndexQuery, IndexRow, RateResult, WaitingRun } from "./tenant";

export interface JobRpc {
  create(raw: CreateJob): Promise<{ snapshot: JobSnapshot; created: boolean }>;
  get(tenant: string, opts?: { full?: boolean }): Promise<Result<{ snapshot: JobSnapshot }>>;
  readStream(tenant: string): Promise<Result<{ snapshot: JobSnapshot; output: boolean }>>;
  events(tenant: string, afterSeq?: number): Promise<Result<{ events: JobEvent[]; terminal: boolean }>>;
  waitForChange(tenant: string, afterSeq: number, timeoutMs: number, opts?: { full?: boolean }): Promise<Result<{ events: JobEvent[]; snapshot: JobSnapshot; terminal: boolean }>>;
  deliveries(tenant: string): Promise<Result<{ deliveries: Delivery[] }>>;
  liveProgress(tenant: string, opts: { image: boolean }): Promise<Result<{ status: JobStatus; progress: BackendProgress | null; image: string | null }>>;
  skip(tenant: string): Promise<Result<{ skipped: boolean }>>;
  cancel(tenant: string, onlyQueued?: boolean): Promise<Result<{ snapshot: JobSnapshot }>>;
  retry(tenant: string): Promise<Result<{ snapshot: JobSnapshot }>>;
  redeliver(tenant: string): Promise<Result<{ event_id: string }>>;
  wake(backend: string): Promise<boolean>;
  holdsSlot(backend: string): Promise<boolean>;
  attemptRuns(backend: string, n: number): Promise<boolean>;
  backendCallback(attemptN: number, token: string, headers: [string, string][], staged: CallbackBody): Promise<{ accepted: boolean }>;
}

/**
 * A tenant's object: its home (named by the tenant) or one of its shards (src/tenant-shards.ts
 * names them); each holds the part of the tables that was routed to it.
 */
export interface TenantRpc {
  claim(scope: ClaimScope, key: string, hash: string, runId: string, ttlMs: number | null): Promise<ClaimResult>;
  release(scope: ClaimScope, key: string, runId: string): Promise<void>;
  lookup(scope: ClaimScope, key: string): Promise<string | null>;
  holder(scope: ClaimScope, key: string): Promise<{ runId: string; hash: string } | null>;
  noteClaim(runId: string, ref: ClaimRef, ttlMs: number | null): Promise<void>;
  unnoteClaim(runId: string, ref: ClaimRef): Promise<void>;
  claimRefs(runId: string): Promise<ClaimRef[]>;
  addWaiting(runId: string, ttlMs: number): Promise<void>;
  removeWaiting(runId: string): Promise<void>;
  listWaiting(limit: number): Promise<WaitingRun[]>;
  getOptions(): Promise<Record<string, unknown>>;
  setOptions(values: Record<string, unknown>, maxBytes: number): Promise<boolean>;
  putResult(id: string, body: string, ttlMs: number): Promise<void>;
  getResult(id: string): Promise<string | null>;
  expireFileAt(key: string, expiresAt: number): Promise<void>;
  trackEndpointJob(endpoint: string, runId: string): Promise<void>;
  endpointCounts(endpoint: string): Promise<EndpointCount[]>;
  endpointLiveJobs(endpoint: string, after: { created_at: number; run_id: string } | null, limit: number): Promise<EndpointJob[]>;
  noteEndpointJob(runId: string, status: string, retried?: boolean): Promise<void>;
  hit(requests: number, periodMs: number): Promise<RateResult>;
  admit(tenant: string, rows: IndexRow | IndexRow[], maxActive: number | null): Promise<AdmitResult>;
  forget(id: string): Promise<void>;
  purgeJob(id: string): Promise<void>;
  dropMissing(id: string): Promise<void>;
  setStatus(row: IndexRow): Promise<void>;
  reopen(id: string, maxActive: number | null): Promise<AdmitResult>;
  list(q: IndexQuery): Promise<IndexRow[]>;
}

export interface SchedulerRpc {
  acquire(req: { backend: string; jobId: string; tenant: string; maxConcurrency: number; cooldownMs: number; leaseMs: number; enqueue: boolean }): Promise<AcquireResult>;
  /** `unreachable`: the failure was the backend's alone (no request can make it unreachable). */
  release(jobId: string, outcome: ReleaseOutcome, unreachable?: boolean): Promise<void>;
  judge(jobId: string, outcome: AttemptOutcome, tenant: string): Promise<void>;
  renew(jobId: string, tenant: string, leaseMs: number): Promise<void>;
  /** `verdict`: how the attempt went, recorded with the slot's change of name (a timed-out call the backend would not stop). */
  orphan(jobId: string, attempt: number, startedAt: number, timeoutMs: number, verdict?: AttemptOutcome): Promise<void>;
  status(): Promise<BackendStatus>;
  models(b: BackendConfig, waitMs: number): Promise<CatalogAnswer>;
  /** A1111's refresh-* on the backend, at most once per interval for the deployment; whether one ran for this call. */
  rescan(b: BackendConfig, what: RescanKind): Promise<boolean>;
  /** A ComfyUI server's answer at `path` (200 only, unparsed), kept for the deployment; undefined when it gave none. */
  listing(b: BackendConfig, path: ComfyListing): Promise<string | undefined>;
}

/** A stub as the RPC surface it speaks (the generated stub types cannot carry free-form `unknown` JSON). */
export const rpc = <T>(ns: DurableObjectNamespace<Rpc.DurableObjectBranded | undefined>, name: string): T => ns.get(ns.idFromName(name)) as unknown as T;

import type { BackendConfig } from "../config";
import type { GenerationSpec } from "../jobs/spec";

/** One generation as an adapter receives it. */
export interface GenerationRequest {
  spec: GenerationSpec;
  initImage?: Uint8Array;
  /** Where an asynchronous backend should report completion (an unguessable per-attempt URL). */
  callbackUrl: string;
  /** Shared secret for backends that sign their callbacks (Cerebrium). */
  callbackSecret: string;
  signal: AbortSignal;
}

/** Why an attempt failed, and whether another backend might do better. */
export interface BackendFailure {
  code: "backend_failed" | "backend_unavailable" | "timeout" | "out_of_memory" | "invalid_request" | "interrupted" | "canceled";
  message: string;
  /** True for failures of the backend rather than of the request: try the next backend. */
  retryable: boolean;
}

export type Outcome =
  | { kind: "done"; images: Uint8Array[] }
  | { kind: "pending"; externalId: string; pollAfterMs: number }
  | { kind: "failed"; failure: BackendFailure };

export interface ModelInfo {
  title: string;
  model_name: string;
  hash: string | null;
  sha256: string | null;
  filename: string;
  config: string | null;
  backend: string;
}

/** One adapter per backend kind: translation to and from its wire format only. */
export interface BackendAdapter {
  readonly config: BackendConfig;
  /** Starts a generation; a synchronous backend answers `done`, an asynchronous one `pending`. */
  submit(req: GenerationRequest): Promise<Outcome>;
  /** Asks an asynchronous backend how a pending generation is doing. */
  poll(externalId: string, ctx: { samples: number; signal: AbortSignal }): Promise<Outcome>;
  /** Reads a completion callback; `undefined` when it is not one this adapter accepts. */
  callback(req: { headers: Headers; body: string; secret: string; samples: number }): Promise<Outcome | undefined>;
  /** Stops a running generation (best effort). */
  cancel(externalId: string | undefined, signal: AbortSignal): Promise<void>;
  listModels(signal: AbortSignal): Promise<ModelInfo[]>;
}

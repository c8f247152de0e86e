import type { BackendConfig } from "../config";
import type { BackendCredentials, GenerationSpec } from "../jobs/spec";
import type { ImageStore, StoredImage } from "../storage/images";

export type { ImageStore };

/** One generation as an adapter receives it. */
export interface GenerationRequest {
  spec: GenerationSpec;
  /** Unique per attempt: A1111's `force_task_id`, so a cancel can tell this generation from a neighbour's. */
  taskId: string;
  initImage?: Uint8Array;
  /** A `workflow` job's input images, under the names its graph loads them by. */
  inputImages?: { name: string; bytes: Uint8Array }[];
  /** Live figures a backend pushes (ComfyUI's `progress` messages) rather than being asked for. */
  onProgress?: (progress: BackendProgress) => void;
  /** A preview image a backend pushes while it samples (ComfyUI's binary frames). */
  onPreview?: (preview: BackendPreview) => void;
  /** Where an asynchronous backend should report completion (an unguessable per-attempt URL). */
  callbackUrl: string;
  /** Shared secret for backends that sign their callbacks (Cerebrium). */
  callbackSecret: string;
  /** Credentials the job hands its backend (Comfy.org's, for ComfyUI's API nodes): sent, never logged. */
  credentials?: BackendCredentials;
  signal: AbortSignal;
  images: ImageStore;
  /**
   * Called when a synchronous backend has answered 200, before its body is read: its generation is
   * over, so its slot can go to the next job while the images are still being stored.
   */
  onFinished?: () => void;
}

/** What following a generation again needs: the job, the attempt, and where its images and figures go. */
export type ResumeRequest = Pick<GenerationRequest, "spec" | "taskId" | "images" | "signal" | "onProgress" | "onPreview">;

export interface BackendPreview {
  content_type: "image/jpeg" | "image/png";
  image: Uint8Array;
}

/** A generation's live figures, as a backend reports them (A1111's progress fields beside /v1's). */
export interface BackendProgress {
  /** 0–1 over the whole request. */
  fraction: number;
  /** Sampling step of the batch running now, of `steps`. */
  step: number;
  steps: number;
  eta_s: number | null;
  job: string;
  job_no: number;
  job_count: number;
  job_timestamp: string;
  textinfo: string | null;
  /** The graph node being run (ComfyUI), when the backend says. */
  node?: string;
}

export interface ProgressRequest {
  taskId: string;
  /** The backend's id of the generation, for backends that give one (RunPod). */
  externalId?: string;
  /** Whether a preview image is wanted too (it costs the backend an encode and the wire its bytes). */
  image: boolean;
  signal: AbortSignal;
}

export interface ProgressReading {
  progress: BackendProgress;
  /** The backend's current preview, base64, when asked for and available. */
  image?: string;
}

/** Why an attempt failed, and whether another backend might do better. */
export interface BackendFailure {
  /** `backend_error`: the backend ran the request and its own code failed (a ComfyUI node's exception). */
  /** `backend_busy`: the backend refused to take the request now (a 429): nothing of it runs there, and the job tries again later. */
  code: "backend_failed" | "backend_error" | "backend_unavailable" | "backend_busy" | "timeout" | "out_of_memory" | "invalid_request" | "request_too_large" | "interrupted" | "canceled";
  /** Written by Easel: tenants see it. */
  message: string;
  /** The backend's own words, for the operator's log only (a proxy's error page can carry anything). */
  detail?: string;
  /** True when another backend might do better: try the next one. */
  retryable: boolean;
  /** The graph node that failed, where the backend says (a ComfyUI execution_error's node_id and class_type). */
  node?: FailedNode;
}

export interface FailedNode {
  id: string;
  type: string | null;
}

export type Outcome =
  /** The images, stored by then; any other the store took (a grid, a partial batch) is not the job's. */
  | { kind: "done"; images: StoredImage[] }
  | { kind: "pending"; externalId: string; pollAfterMs: number }
  | { kind: "failed"; failure: BackendFailure }
  /**
   * The connection was cut after the request may have reached the backend, which may be running it
   * now: it must not be sent again, there or elsewhere, until the backend no longer runs it.
   */
  /** `unanswered`: the call went its backend's whole `timeout_s` without an answer (else its connection was lost). */
  | { kind: "lost"; message: string; unanswered?: boolean };

/** A completion callback's outcome, with the backend's id of the generation that reported (RunPod's job id). */
export type CallbackOutcome = Outcome & { externalId?: string };

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
  poll(externalId: string, ctx: { samples: number; upscale: boolean; workflow?: WorkflowOutputs; signal: AbortSignal; images: ImageStore }): Promise<Outcome>;
  /** Reads a completion callback; `undefined` when it is not one this adapter accepts. */
  callback(req: { headers: Headers; body: CallbackSource; secret: string; samples: number; upscale: boolean; workflow?: WorkflowOutputs; images: ImageStore }): Promise<CallbackOutcome | undefined>;
  /**
   * Stops this attempt's generation (best effort), and never a generation that is not this
   * attempt's. True when the backend took the stop or runs nothing of it; false when it may still
   * run it (it could not be told, or cannot be stopped), so its slot must stay taken.
   */
  cancel(attempt: { externalId: string | undefined; taskId: string }, signal: AbortSignal): Promise<boolean>;
  listModels(signal: AbortSignal): Promise<ModelInfo[]>;
  /** Live figures of a running generation, for backends that report them; undefined when it cannot tell. */
  progress?(req: ProgressRequest): Promise<ProgressReading | undefined>;
  /**
   * Follows again a generation the backend has under `externalId` (found after a restart or a lost
   * answer), as `submit` follows its own, for backends that can (ComfyUI's socket and history).
   */
  resume?(externalId: string, req: ResumeRequest): Promise<Outcome>;
  /** Ends the batch being sampled now for this attempt (A1111's skip), for backends that can. */
  skip?(attempt: { taskId: string }, signal: AbortSignal): Promise<void>;
}

/**
 * A `workflow` job's saving nodes and the `filename_prefix` of each, so an answer that names its
 * files but not their nodes (worker-comfyui's) can still say which node saved each.
 */
export interface WorkflowOutputs {
  /** Asked only when an answer has files to tell apart (a graph kept in R2 is read back then). */
  saveNodes(): Promise<{ node: string; prefix: string }[]>;
}

/** A callback's body, which can be read more than once (a signature check, then the images). */
export interface CallbackSource {
  open(): Promise<ReadableStream<Uint8Array>>;
}

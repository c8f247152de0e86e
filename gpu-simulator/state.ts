/** The simulator's configuration (fault injection) and what it observed (stats). */
import { A1111Tasks } from "./a1111-tasks";

export type Kind = "a1111" | "runpod" | "cerebrium" | "comfyui";

export interface Faults {
  /** Generation time per image. */
  msPerImage: number;
  /** Fraction of generate calls that fail with a 500 error envelope. */
  errorRate: number;
  /** Fraction of generate calls that fail with A1111's CUDA out-of-memory envelope. */
  oomRate: number;
  /** Answer 200 with no images. */
  emptyImages: boolean;
  /** Drop the connection without answering. */
  down: boolean;
  /** Accept and never answer. */
  hang: boolean;
  /** RunPod/Cerebrium: never send the completion webhook. */
  dropWebhooks: boolean;
  /** RunPod: COMPLETED whose output is an A1111 error envelope. */
  runpodOutputError: boolean;
  /** RunPod: FAILED whose error is a JSON string. */
  runpodStringError: boolean;
  /** A1111: one generation at a time, the rest queued behind it, as the real A1111 runs. */
  serial: boolean;
  /** Images of noise, as large as real ones (a 2048² PNG is ~12 MB). */
  incompressible: boolean;
  /** A generation's answer: its headers at once, its body this much later (a large answer on a slow link). */
  bodyDelayMs: number;
  /**
   * A kept-alive connection idle for longer than this is dropped when its next request comes, as a
   * server whose keep-alive timeout ran out just as the client reused the connection (0: never).
   */
  staleAfterMs: number;
  /**
   * The next this many generation requests (A1111 txt2img/img2img, RunPod `/run`) are taken and run,
   * and their connection dropped before any answer: a request that reached the backend, then a reset.
   */
  dropAfterAccept: number;
  /** RunPod: completion webhooks sent chunked, with no Content-Length (as a streaming client sends them). */
  chunkedWebhooks: boolean;
  /** RunPod: `/status` says IN_PROGRESS until the completion webhook is answered (so the webhook is what settles a job). */
  statusAfterWebhook: boolean;
  /** ComfyUI: fraction of `POST /prompt`s refused with a 400 in ComfyUI's validation shape. */
  comfyRejectRate: number;
  /** ComfyUI: its sockets closed and new ones refused while HTTP still answers (clients fall back to `/history`). */
  comfySocketDown: boolean;
  /** ComfyUI: reuse the previous prompt's node outputs as ComfyUI does by default (off: as if run with `--cache-none`). */
  comfyCache: boolean;
  /** ComfyUI: a binary preview frame after each sampling step, as with `--preview-method` set (off: ComfyUI's default, no previews). */
  comfyPreviews: boolean;
  /** ComfyUI older than v0.3.45 (July 2025): `/prompt` ignores a given `prompt_id` and answers one of its own. */
  comfyOwnPromptIds: boolean;
  /** A1111 started with `--nowebui` (webui.py `api_only`): its API only, no `/internal/progress`. */
  nowebui: boolean;
  /** RunPod: how long a `/run` waits IN_QUEUE before a worker takes it (a cold start), read when the job is queued. */
  queueMs: number;
  /** A1111: an override naming a model it lacks is a 500 RuntimeError, where A1111 itself drops it and generates with the loaded one. */
  unknownModelFails: boolean;
  /** RunPod: the next this many `/run`s are refused with a 429, nothing queued (an endpoint's request limit), counted down. */
  rateLimitedRuns: number;
}

export type SimConfig = Faults & { [K in Kind]?: Partial<Faults> };

export const DEFAULT_FAULTS: Faults = {
  msPerImage: 50,
  errorRate: 0,
  oomRate: 0,
  emptyImages: false,
  down: false,
  hang: false,
  dropWebhooks: false,
  runpodOutputError: false,
  runpodStringError: false,
  serial: false,
  incompressible: false,
  bodyDelayMs: 0,
  staleAfterMs: 0,
  dropAfterAccept: 0,
  chunkedWebhooks: false,
  statusAfterWebhook: false,
  comfyRejectRate: 0,
  comfySocketDown: false,
  comfyCache: false,
  comfyPreviews: false,
  comfyOwnPromptIds: false,
  nowebui: false,
  queueMs: 0,
  unknownModelFails: false,
  rateLimitedRuns: 0,
};

export interface KindStats {
  current: number;
  maxConcurrent: number;
  generations: number;
  /** The prompt tags running when `maxConcurrent` was last reached (a load test's "who was there"). */
  peakTags: string[];
}

export interface Stats {
  current: number;
  maxConcurrent: number;
  byKind: Record<Kind, KindStats>;
  requests: Record<string, number>;
  interrupts: number;
  /** Generations an interrupt cut short. */
  interrupted: number;
  /** Generations asked to save their images on the backend's disk. */
  filesWritten: number;
  skips: number;
  cancels: number;
  webhooksSent: number;
  /** Webhooks the receiver answered with a 2xx. */
  webhooksOk: number;
  /** Requests dropped on a connection gone stale (`staleAfterMs`). */
  staleDropped: number;
  /** Generations per prompt tag `[tag:<name>]`: lets a load test count GPU runs per job. */
  byTag: Record<string, number>;
  /** A1111 generations per task id (`force_task_id`): one attempt run twice shows here. */
  byTask: Record<string, number>;
  /** Requests taken and then dropped (`dropAfterAccept`). */
  droppedAfterAccept: number;
  /** The latest generation per tag, started and ended (epoch ms): lets the bench split a job's time. */
  lastRunByTag: Record<string, { started_at: number; ended_at: number | null }>;
  /** ComfyUI prompts queued per `prompt_id` (HTTP `/prompt` and worker-comfyui runs): one prompt queued twice shows as a 2. */
  byPrompt: Record<string, number>;
}

const kindStats = (): KindStats => ({ current: 0, maxConcurrent: 0, generations: 0, peakTags: [] });
export const emptyStats = (): Stats => ({
  current: 0,
  maxConcurrent: 0,
  byKind: { a1111: kindStats(), runpod: kindStats(), cerebrium: kindStats(), comfyui: kindStats() },
  requests: {},
  interrupts: 0,
  interrupted: 0,
  filesWritten: 0,
  skips: 0,
  cancels: 0,
  webhooksSent: 0,
  webhooksOk: 0,
  staleDropped: 0,
  byTag: {},
  byTask: {},
  droppedAfterAccept: 0,
  lastRunByTag: {},
  byPrompt: {},
});

export class SimState {
  config: SimConfig;
  stats: Stats = emptyStats();
  /** A1111's loaded checkpoint, as `/sdapi/v1/options` reports it. */
  checkpoint = "v1-5-pruned-emaonly.safetensors [6ce0161689]";
  readonly tasks = new A1111Tasks();
  /** The tags of the generations running now, per kind (for `peakTags`). */
  private readonly runningTags: Partial<Record<Kind, Map<number, string>>> = {};
  private nextRun = 0;

  constructor(initial: Partial<SimConfig> = {}) {
    this.config = { ...DEFAULT_FAULTS, ...initial };
  }

  faults(kind: Kind): Faults {
    return { ...DEFAULT_FAULTS, ...stripKinds(this.config), ...this.config[kind] };
  }

  /** Whether this generation request of `kind` is one to drop after taking it (see `dropAfterAccept`), counting it down. */
  takeDrop(kind: Kind): boolean {
    const left = this.faults(kind).dropAfterAccept;
    if (left <= 0) return false;
    this.config[kind] = { ...this.config[kind], dropAfterAccept: left - 1 };
    this.stats.droppedAfterAccept++;
    return true;
  }

  /** Whether this `/run` is one to refuse with a 429 (see `rateLimitedRuns`), counting it down. */
  takeRateLimit(): boolean {
    const left = this.faults("runpod").rateLimitedRuns;
    if (left <= 0) return false;
    this.config.runpod = { ...this.config.runpod, rateLimitedRuns: left - 1 };
    return true;
  }

  patch(p: Partial<SimConfig>): void {
    const next: SimConfig = { ...this.config, ...stripKinds(p) };
    for (const k of ["a1111", "runpod", "cerebrium", "comfyui"] as const) if (p[k]) next[k] = { ...this.config[k], ...p[k] };
    this.config = next;
  }

  /** Counts a generation for as long as it runs, keeping the highest concurrency ever seen. */
  begin(kind: Kind, prompt = ""): () => void {
    const tag = /\[tag:([^\]\s]{1,100})\]/.exec(prompt)?.[1];
    const run = { started_at: Date.now(), ended_at: null as number | null };
    if (tag !== undefined) {
      this.stats.byTag[tag] = (this.stats.byTag[tag] ?? 0) + 1;
      this.stats.lastRunByTag[tag] = run;
    }
    const k = this.stats.byKind[kind];
    const running = (this.runningTags[kind] ??= new Map<number, string>());
    const id = this.nextRun++;
    running.set(id, tag ?? "");
    this.stats.current++;
    k.current++;
    k.generations++;
    this.stats.maxConcurrent = Math.max(this.stats.maxConcurrent, this.stats.current);
    if (k.current >= k.maxConcurrent) k.peakTags = [...running.values()];
    k.maxConcurrent = Math.max(k.maxConcurrent, k.current);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      run.ended_at = Date.now();
      running.delete(id);
      this.stats.current--;
      k.current--;
    };
  }
}

function stripKinds(c: Partial<SimConfig>): Partial<Faults> {
  const { a1111: _a, runpod: _r, cerebrium: _c, comfyui: _u, ...rest } = c;
  return rest;
}

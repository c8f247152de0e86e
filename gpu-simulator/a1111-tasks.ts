/**
 * A1111's task bookkeeping and live progress: `force_task_id` names a request's task,
 * `POST /internal/progress {"id_task"}` says whether it is queued, active or completed,
 * `GET /sdapi/v1/progress` reports the running generation step by step with a small preview,
 * and `POST /sdapi/v1/skip` ends the current batch early. Unless `serial`, the simulator runs several
 * generations at once where A1111 queues them behind one lock; as in A1111, only one is current (the
 * oldest): progress reports it, `/internal/progress` calls it `active` (the others `queued`), and
 * interrupt and skip act on it alone.
 */
import { randomBytes } from "node:crypto";
import { encodePng } from "./png";

/** One generation, timed batch by batch, so its progress is read off the clock. */
export interface Generation {
  taskId: string;
  job: string;
  jobTimestamp: string;
  startedAt: number;
  jobCount: number;
  jobNo: number;
  batchStartedAt: number;
  batchMs: number;
  steps: number;
  skipped: boolean;
  interrupted: boolean;
  /** Ends the current batch now (skip). */
  skip: () => void;
  /** Stops the whole generation (interrupt). */
  interrupt: () => void;
  seed: number;
}

const FINISHED_KEPT = 16;
const PREVIEW_PX = 64;

/** `task(<id>)` as A1111 names a task nobody named. */
export const newTaskId = (): string => `task(${randomBytes(6).toString("hex")})`;

/** `YYYYMMDDhhmmss` of now, as A1111 writes `job_timestamp`. */
const stamp = (ms: number): string => new Date(ms).toISOString().replace(/[-:T]/g, "").slice(0, 14);

export class A1111Tasks {
  private readonly pending = new Map<string, number>();
  private readonly finished: string[] = [];
  private readonly running: Generation[] = [];
  private lock: Promise<void> = Promise.resolve();

  /**
   * Queues the task and waits for its turn: with `serial`, behind A1111's one-at-a-time lock, as
   * the real A1111 runs. The returned function lets the next one in.
   */
  async admit(taskId: string, serial: boolean): Promise<() => void> {
    this.pending.set(taskId, Date.now());
    if (!serial) return () => undefined;
    let release = () => undefined as unknown;
    const previous = this.lock;
    this.lock = new Promise<void>((r) => (release = r));
    await previous;
    return () => void release();
  }

  start(g: Omit<Generation, "startedAt" | "jobTimestamp" | "jobNo" | "batchStartedAt" | "skipped" | "interrupted">): Generation {
    this.pending.delete(g.taskId);
    const now = Date.now();
    const gen: Generation = { ...g, startedAt: now, jobTimestamp: stamp(now), jobNo: 0, batchStartedAt: now, skipped: false, interrupted: false };
    this.running.push(gen);
    return gen;
  }

  finish(gen: Generation): void {
    const i = this.running.indexOf(gen);
    if (i >= 0) this.running.splice(i, 1);
    this.pending.delete(gen.taskId);
    this.finished.push(gen.taskId);
    if (this.finished.length > FINISHED_KEPT) this.finished.shift();
  }

  /** The tasks generating now (for `/_sim/tasks`: tests find a job by the task id it was sent with). */
  active(): string[] {
    return this.running.map((g) => g.taskId);
  }

  /** A1111's `shared.state.skip()`: the current generation's batch only. */
  skip(): void {
    const g = this.running[0];
    if (!g) return;
    g.skipped = true;
    g.skip();
  }

  /** A1111's `shared.state.interrupt()`: the current generation only; queued requests run later. */
  interrupt(): void {
    const g = this.running[0];
    if (!g) return;
    g.interrupted = true;
    g.interrupt();
  }

  /** `GET /sdapi/v1/progress`: A1111's figures for the current generation, zeros when idle. */
  progress(skipCurrentImage: boolean): Record<string, unknown> {
    const g = this.running[0];
    if (!g) {
      return {
        progress: 0,
        eta_relative: 0,
        state: { skipped: false, interrupted: false, stopping_generation: false, job: "", job_count: 0, job_timestamp: "0", job_no: 0, sampling_step: 0, sampling_steps: 0 },
        current_image: null,
        textinfo: null,
        current_task: null,
      };
    }
    const { step, fraction } = figures(g);
    // A1111 adds 0.01 so that nothing divides by zero.
    const progress = Math.min(1, 0.01 + fraction);
    const elapsed = (Date.now() - g.startedAt) / 1000;
    return {
      progress,
      eta_relative: elapsed / progress - elapsed,
      state: {
        skipped: g.skipped,
        interrupted: g.interrupted,
        stopping_generation: false,
        job: g.job,
        job_count: g.jobCount,
        job_timestamp: g.jobTimestamp,
        job_no: g.jobNo,
        sampling_step: step,
        sampling_steps: g.steps,
      },
      current_image: step > 0 && !skipCurrentImage ? preview(g, step).toString("base64") : null,
      textinfo: null,
      // A1111 1.6+ names the task it runs (modules/progress.py `current_task`).
      current_task: g.taskId,
    };
  }

  /** `POST /internal/progress`: one task's state; figures only while it is active. */
  internal(idTask: unknown, idLivePreview: unknown): Record<string, unknown> {
    const id = typeof idTask === "string" ? idTask : "";
    // Only the current generation is active; one started beside it waits, for A1111, in its queue.
    const g = this.running[0]?.taskId === id ? this.running[0] : undefined;
    const queued = this.pending.has(id) || this.running.some((r) => r.taskId === id && r !== g);
    const completed = this.finished.includes(id);
    if (!g) {
      const order = [...this.running.slice(1).map((r) => r.taskId), ...this.pending.keys()];
      const textinfo = queued ? `In queue: ${order.indexOf(id) + 1}/${order.length}` : "Waiting...";
      return { active: false, queued, completed, progress: null, eta: null, live_preview: null, id_live_preview: -1, textinfo };
    }
    const { step, fraction } = figures(g);
    const elapsed = (Date.now() - g.startedAt) / 1000;
    const eta = fraction > 0 ? elapsed / fraction - elapsed : null;
    // The preview id counts steps, so a client that has this step's preview gets none again.
    const previewId = g.jobNo * g.steps + step;
    const fresh = step > 0 && previewId !== idLivePreview;
    return {
      active: true,
      queued: false,
      completed: false,
      progress: fraction,
      eta,
      live_preview: fresh ? `data:image/png;base64,${preview(g, step).toString("base64")}` : null,
      id_live_preview: fresh ? previewId : typeof idLivePreview === "number" ? idLivePreview : -1,
      textinfo: null,
    };
  }
}

function figures(g: Generation): { step: number; fraction: number } {
  const inBatch = Math.min(1, (Date.now() - g.batchStartedAt) / Math.max(1, g.batchMs));
  const step = Math.min(g.steps, Math.floor(inBatch * g.steps));
  const fraction = Math.min(1, (g.jobNo + (g.steps > 0 ? step / g.steps : 0)) / Math.max(1, g.jobCount));
  return { step, fraction };
}

/** A small preview that brightens as sampling goes on, as a denoising latent would. */
function preview(g: Generation, step: number): Buffer {
  const t = step / Math.max(1, g.steps);
  const base = g.seed % 97;
  return Buffer.from(encodePng(PREVIEW_PX, PREVIEW_PX, (x, y) => [Math.round((base + x * 2) * t) & 255, Math.round((y * 3) * t) & 255, Math.round(128 * t) & 255]));
}

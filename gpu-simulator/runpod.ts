/**
 * RunPod serverless (`/v2/{endpoint_id}/run|runsync|status|cancel`) in front of the A1111 worker of
 * seed 000, or of worker-comfyui for a comfy endpoint or an input with a `workflow`.
 */
import { randomUUID } from "node:crypto";
import { generate, MODELS, options, Running, type Reply } from "./a1111";
import { isComfyJob, runWorkflow } from "./comfyui-worker";
import type { Faults, SimState } from "./state";
import { extraSingleImage } from "./upscale";

type Status = "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT";

interface RunPodJob {
  id: string;
  status: Status;
  input: Record<string, unknown>;
  webhook?: string;
  output?: unknown;
  error?: string;
  createdAt: number;
  startedAt?: number;
  endedAt?: number;
  running: Running;
  /** The endpoint id it was sent to, and the simulator's base URL as the caller reached it (for `s3_url` links). */
  endpoint: string;
  baseUrl: string;
  /** Ended, its webhook not yet answered, under `statusAfterWebhook`: `/status` still says IN_PROGRESS. */
  webhookPending?: boolean;
  /** `policy.ttl` (ms): past it RunPod deletes the job, whatever its state. */
  ttlMs?: number;
}

export type Where = { endpoint: string; baseUrl: string };

const WEBHOOK_ATTEMPTS = 3;
const WEBHOOK_RETRY_MS = 1000;

/** A `/run`'s `policy.ttl`, in ms, when it sets one. */
const ttlOf = (policy: unknown): number | undefined => {
  const ttl = policy && typeof policy === "object" ? (policy as Record<string, unknown>).ttl : undefined;
  return typeof ttl === "number" && ttl > 0 ? ttl : undefined;
};

export class RunPodSim {
  private readonly jobs = new Map<string, RunPodJob>();

  constructor(private readonly state: SimState) {}

  statusBody(job: RunPodJob): Record<string, unknown> {
    return {
      id: job.id,
      status: job.status,
      delayTime: (job.startedAt ?? Date.now()) - job.createdAt,
      ...(job.startedAt ? { executionTime: (job.endedAt ?? Date.now()) - job.startedAt } : {}),
      ...(job.output !== undefined ? { output: job.output } : {}),
      ...(job.error !== undefined ? { error: job.error } : {}),
    };
  }

  /** `POST /run`: queued at once, run in the background, webhook on completion. */
  run(body: Record<string, unknown>, where: Where = { endpoint: "", baseUrl: "" }): { status: number; body: unknown; job?: RunPodJob; bodyDelayMs?: number } {
    const input = body.input;
    if (!input || typeof input !== "object") return { status: 400, body: { error: "input is required" } };
    if (this.state.takeRateLimit()) return { status: 429, body: { error: "Too many requests" } };
    const job: RunPodJob = {
      id: `${randomUUID()}-u1`,
      status: "IN_QUEUE",
      input: input as Record<string, unknown>,
      webhook: typeof body.webhook === "string" ? body.webhook : undefined,
      ttlMs: ttlOf(body.policy),
      createdAt: Date.now(),
      running: new Running(),
      ...where,
    };
    this.jobs.set(job.id, job);
    void this.execute(job);
    // `bodyDelayMs` holds the answer back while the job already runs: the caller is still waiting for its id.
    return { status: 200, body: { id: job.id, status: job.status }, job, bodyDelayMs: this.state.faults("runpod").bodyDelayMs };
  }

  async runsync(body: Record<string, unknown>, where?: Where, timeoutMs = 90_000): Promise<{ status: number; body: unknown }> {
    const started = this.run(body, where);
    const job = started.job;
    if (!job) return started;
    const until = Date.now() + timeoutMs;
    while (!["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(job.status) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    return { status: 200, body: this.statusBody(job) };
  }

  status(id: string): { status: number; body: unknown } {
    const job = this.jobs.get(id);
    if (!job) return { status: 404, body: { error: "job not found" } };
    if (job.webhookPending) return { status: 200, body: this.statusBody({ ...job, status: "IN_PROGRESS", endedAt: undefined, output: undefined, error: undefined }) };
    return { status: 200, body: this.statusBody(job) };
  }

  /**
   * `GET /stream/{id}`: a worker that streams its progress, as a generator handler yields it (one
   * item per call, read off the clock); nothing once the job has ended.
   */
  stream(id: string): { status: number; body: unknown } {
    const job = this.jobs.get(id);
    if (!job) return { status: 404, body: { error: "job not found" } };
    // worker-comfyui streams nothing.
    if (job.status !== "IN_PROGRESS" || !job.startedAt || isComfyJob(job.endpoint, job.input)) return { status: 200, body: { status: job.status, stream: [] } };
    const steps = typeof job.input.steps === "number" ? job.input.steps : 20;
    const count = (typeof job.input.batch_size === "number" ? job.input.batch_size : 1) * (typeof job.input.n_iter === "number" ? job.input.n_iter : 1);
    const total = Math.max(1, this.state.faults("runpod").msPerImage * count);
    const elapsed = Date.now() - job.startedAt;
    const progress = Math.min(1, elapsed / total);
    return { status: 200, body: { status: job.status, stream: [{ output: { progress, step: Math.floor(progress * steps), steps, eta: Math.max(0, (total - elapsed) / 1000) } }] } };
  }

  cancel(id: string): { status: number; body: unknown } {
    const job = this.jobs.get(id);
    if (!job) return { status: 404, body: { error: "job not found" } };
    this.state.stats.cancels++;
    if (!["COMPLETED", "FAILED", "TIMED_OUT"].includes(job.status)) {
      job.status = "CANCELLED";
      job.endedAt = Date.now();
      job.running.stopAll();
    }
    return { status: 200, body: { id: job.id, status: job.status } };
  }

  private async execute(job: RunPodJob): Promise<void> {
    await new Promise((r) => setTimeout(r, 5 + this.state.faults("runpod").queueMs));
    if (job.status === "CANCELLED") return;
    // Its ttl ran out in the queue: RunPod deletes the job, which never runs (`/status` is a 404).
    if (job.ttlMs !== undefined && Date.now() > job.createdAt + job.ttlMs) {
      this.jobs.delete(job.id);
      return;
    }
    job.status = "IN_PROGRESS";
    job.startedAt = Date.now();
    const faults = this.state.faults("runpod");
    if (isComfyJob(job.endpoint, job.input)) return this.executeWorkflow(job);
    const api = job.input.api_name;
    let reply: Reply;
    if (api === "txt2img" || api === "img2img") reply = await generate(this.state, "runpod", api, job.input, job.running);
    else if (api === "extra-single-image") reply = extraSingleImage(this.state, "runpod", job.input);
    else if (api === "getModels") reply = { status: 200, body: MODELS };
    else if (api === "getOptions") reply = options(this.state);
    else if (api === "setOptions") reply = options(this.state, job.input);
    else reply = { status: 500, body: { error: `Method '${String(api)}' not yet implemented` } };
    // A cancel may have landed while it ran.
    if ((job.status as Status) === "CANCELLED") return;
    job.endedAt = Date.now();
    if (reply === "hang" || reply === "down") {
      job.status = "TIMED_OUT";
    } else if (faults.runpodStringError) {
      job.status = "FAILED";
      job.error = JSON.stringify({ error_type: "<class 'torch.cuda.OutOfMemoryError'>", error_message: "CUDA out of memory. Tried to allocate 2.00 GiB" });
    } else if (faults.runpodOutputError) {
      job.status = "COMPLETED";
      job.output = { error: "OutOfMemoryError", detail: "", body: "", errors: "CUDA out of memory. Tried to allocate 2.00 GiB" };
    } else if (reply.status >= 500 && !(reply.body && typeof reply.body === "object" && "error" in reply.body)) {
      job.status = "FAILED";
      job.error = JSON.stringify(reply.body);
    } else {
      // The seed-000 handler returns whatever A1111 answered, error envelopes included.
      job.status = "COMPLETED";
      job.output = reply.body;
    }
    if (job.webhook && !faults.dropWebhooks) await this.sendWebhook(job, faults);
  }

  private async executeWorkflow(job: RunPodJob): Promise<void> {
    let interrupted = false;
    const remove = job.running.add(() => (interrupted = true));
    const result = await runWorkflow(this.state, { endpoint: job.endpoint, jobId: job.id, baseUrl: job.baseUrl, input: job.input, interrupted: () => interrupted });
    remove();
    if ((job.status as Status) === "CANCELLED") return;
    job.endedAt = Date.now();
    // runpod-python pops a handler's `error` into the job's error (FAILED); what is left stays its output.
    const { error, ...rest } = result;
    if (typeof error === "string") {
      job.status = "FAILED";
      job.error = error;
      if (Object.keys(rest).length) job.output = rest;
    } else {
      job.status = "COMPLETED";
      job.output = result;
    }
    const faults = this.state.faults("runpod");
    if (job.webhook && !faults.dropWebhooks) await this.sendWebhook(job, faults);
  }

  private async sendWebhook(job: RunPodJob, { chunkedWebhooks: chunked, statusAfterWebhook }: Faults): Promise<void> {
    job.webhookPending = statusAfterWebhook;
    try {
      await this.deliverWebhook(job, chunked);
    } finally {
      job.webhookPending = false;
    }
  }

  private async deliverWebhook(job: RunPodJob, chunked: boolean): Promise<void> {
    for (let attempt = 1; attempt <= WEBHOOK_ATTEMPTS; attempt++) {
      try {
        const text = JSON.stringify(this.statusBody(job));
        const body = chunked ? chunksOfText(text) : text;
        const res = await fetch(job.webhook ?? "", { method: "POST", headers: { "content-type": "application/json" }, body, signal: AbortSignal.timeout(10_000), ...(chunked ? { duplex: "half" } : {}) } as RequestInit);
        this.state.stats.webhooksSent++;
        if (res.ok) {
          this.state.stats.webhooksOk++;
          return;
        }
      } catch {
        // Retried below, as RunPod does.
      }
      await new Promise((r) => setTimeout(r, WEBHOOK_RETRY_MS));
    }
  }
}

/** A body as a stream of 64 KiB pieces: fetch then sends it chunked, without a Content-Length. */
function chunksOfText(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.subarray(at, at + 65_536));
      at += 65_536;
    },
  });
}

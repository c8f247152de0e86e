/** An attempt's outcome applied to the job, and a backend left behind when the job ends without it. */
import { adapterFor } from "../../src/backends";
import type { BackendFailure, Outcome } from "../../src/backends/types";
import { config, type BackendConfig } from "../../src/config";
import type { AttemptOutcome } from "../../src/contracts/scheduler";
import type { StoredJobInput } from "../../src/jobs/spec";
import { redact } from "../../src/lib/redact";
import type { OutputStore, StoredImage } from "../../src/storage/images";
import { TERMINAL } from "./ledger";
import { taskIdOf } from "./progress";
import type { JobRoom } from "./room";
import { endMessage, writeDialectOutputs } from "./dialect-outputs";
import type { Slots } from "./slots";
import { parseInput, triedOf, type AttemptRow, type StoredOutput } from "./tables";
import { finish } from "./transitions";
import { readCredentials } from "./credentials";
import { canceledCallRuns } from "./lost-call";
import { keepGenerated } from "./generated";
import { withDeadline } from "../../src/lib/deadline";
import { fittingFor } from "./fitting";

/** Image n of a batch has seed + n, as A1111 numbers them; an upscale has no seed, nor has a workflow (its graph has its own). */
const seedOf = (input: StoredJobInput, i: number): number | null => (input.spec.type === "upscale" || input.spec.type === "workflow" ? null : input.spec.seed + i);

/** A workflow's outputs in node-id order ("9" before "10"), each node's images as the backend listed them. */
const byNode = (images: StoredImage[]): StoredImage[] =>
  images.some((i) => i.node_id !== undefined) ? [...images].sort((a, b) => (a.node_id ?? "").localeCompare(b.node_id ?? "", "en", { numeric: true })) : images;

/**
 * Whether a failure says something about the backend's health. A request's own fault, and what a
 * request can bring about on any backend (running out of memory on its size, being interrupted),
 * must not let one tenant open a shared backend's circuit for everyone.
 */
const countsAgainstBackend = (f: BackendFailure): boolean => f.retryable && !["out_of_memory", "interrupted", "invalid_request", "request_too_large"].includes(f.code);

/**
 * Kinds whose cancel stops a pending attempt's work there (RunPod cancels the job; ComfyUI takes the
 * prompt out of its queue or interrupts that prompt), so its slot comes back once the backend took
 * the cancel.
 */
const STOPPED_BY_CANCEL = new Set<BackendConfig["kind"]>(["runpod", "runpod-comfyui", "comfyui"]);

/** A backend that refused the request for now (a 429) is asked again after 2, 4, 8, 16, then every 30 s, within the job's deadline. */
export const busyRetryMs = (attempt: number): number => Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5));

/** After a stop, the backend is asked again this much later while it still runs the work (an interrupt takes a moment). */
const STOP_RECHECKS_MS = [2_000, 5_000];

export class Settler {
  constructor(
    private readonly room: JobRoom,
    private readonly slots: Slots,
  ) {}

  /**
   * Applies an attempt's outcome, unless the job moved on (canceled, timed out) meanwhile. The
   * adapter stored the answer's images as it read them: those the job does not keep are removed.
   */
  async settle(n: number, backend: BackendConfig | undefined, outcome: Outcome, stored?: OutputStore): Promise<void> {
    const { ledger, memory } = this.room;
    const current = () => {
      const a = ledger.currentAttempt();
      const row = ledger.mustRow();
      return a?.n === n && row.status === "running" ? row : undefined;
    };
    const name = backend?.name ?? "";
    const release = (outcome: AttemptOutcome, unreachable = false): Promise<void> => this.release(n, name, outcome, unreachable);
    if (!current()) {
      // The job ended without this attempt (canceled, timed out): its slot must not leak. An
      // asynchronous backend that took the job meanwhile runs it now: it is stopped there first
      // (RunPod), or its slot stays taken while it may run (see leaveBackend).
      if (!TERMINAL.has(ledger.mustRow().status)) return;
      const taken = ledger.attempt(n);
      if (outcome.kind === "pending" && taken) await this.leaveBackend({ ...taken, state: "pending", external_id: outcome.externalId }, []);
      // A lost call of a job that ended meanwhile may still run: its slot stays taken while it may.
      else if (outcome.kind === "lost" && taken?.state === "canceled") await this.slots.orphan(taken);
      else await release("neutral");
      return;
    }
    // The attempt stays running without a call in flight: the next heartbeat finds it lost (see the runner's advance).
    if (outcome.kind === "lost") {
      if (outcome.unanswered) memory.unanswered = n;
      return;
    }
    if (outcome.kind === "pending") {
      ledger.submitted(n, name, outcome.externalId, outcome.pollAfterMs, Date.now());
      return;
    }
    if (stored) this.room.followUps.add(() => stored.discardExcept(outcome.kind === "done" ? outcome.images : []), true);
    if (outcome.kind === "done") {
      const input = parseInput(ledger.mustRow());
      const outputs: StoredOutput[] = byNode(outcome.images).map((image, i) => ({ ...image, seed: seedOf(input, i) }));
      // Written before the S3 writes go out (the output gate holds them until it is durable): a
      // restart while they run resumes them rather than run the generation again.
      if (input.s3_output) keepGenerated(this.room.ctx.storage, n, { images: outcome.images, slotReturned: memory.slotReturned === n });
      const unwritten = await writeDialectOutputs(this.room.env, input, outputs, () => (current() ? undefined : endMessage(ledger.mustRow()))).then(
        () => undefined,
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      );
      // The generation is done: the store's failure is no backend's, and running it again
      // elsewhere would pay for the GPU work twice. The job fails; its backend's record is untouched.
      if (unwritten !== undefined) {
        console.warn(`job ${ledger.mustRow().id}: outputs not written: ${unwritten}`);
        const error = { code: "output_write_failed", message: "writing the outputs to their store failed" };
        const ended = await finish(this.room, "failed", error, [], { guard: () => current() !== undefined, also: () => ledger.endAttempt(n, "failed", error.message) });
        if (ended) this.room.followUps.add(() => release("neutral"));
        else await this.settle(n, backend, outcome);
        return;
      }
      // Storing took time: a cancel may have landed meanwhile, and a canceled job never succeeds.
      const ended = await finish(this.room, "succeeded", null, outputs, { guard: () => current() !== undefined, also: () => ledger.endAttempt(n, "done", null) });
      if (!ended) return this.settle(n, backend, outcome);
      // Once the terminal webhook has gone out: nothing of this job follows at the scheduler.
      this.room.followUps.add(() => release("success"));
      return;
    }
    const f = outcome.failure;
    // The backend's own words go to the operator's log only; tenants see what Easel wrote.
    // A backend may echo what it was sent: the job's credentials are struck from the log too.
    const secrets = [backend?.api_key, backend?.password, ...Object.values(readCredentials(this.room.ctx.storage) ?? {})];
    if (f.detail) console.warn(`backend ${name} attempt failed (${f.code}): ${redact(f.detail, secrets)}`);
    // The attempt's end and what follows it (the job's end, or its next dispatch) are one
    // transaction: a restart between them would leave a job running with nothing to run.
    const failedAttempt = () => {
      ledger.endAttempt(n, "failed", f.message);
      ledger.event("attempt.failed", { attempt: n, backend: name, code: f.code, message: f.message }, Date.now());
    };
    if (!f.retryable) {
      await finish(this.room, "failed", { code: f.code, message: f.message, ...(f.node ? { node: f.node } : {}) }, [], { guard: () => current() !== undefined, also: failedAttempt });
      this.room.followUps.add(() => release("neutral"));
      return;
    }
    const tried = triedOf(ledger.mustRow());
    // Refused for now, not failed, and not counted: the job goes on to another fitting backend at
    // once, as from any failure; with none left, it waits and asks this one again.
    if (f.code === "backend_busy") {
      const elsewhere = fittingFor(this.room.env, parseInput(ledger.mustRow())).some((b) => b.name !== name && !tried.has(b.name));
      if (elsewhere) tried.add(name);
      ledger.transaction(() => {
        failedAttempt();
        ledger.redispatch(elsewhere ? Date.now() : Date.now() + busyRetryMs(n), tried);
      });
      await release("neutral");
      return;
    }
    tried.add(name);
    ledger.transaction(() => {
      failedAttempt();
      ledger.redispatch(Date.now(), tried);
    });
    await release(countsAgainstBackend(f) ? "failure" : "neutral", f.code === "backend_unavailable");
  }

  /** An outcome `settle` could not apply (a write refused): the job fails with its attempt, never to run it again. */
  async failUnsettled(n: number, backend: BackendConfig | undefined): Promise<void> {
    const { ledger } = this.room;
    const current = () => ledger.currentAttempt()?.n === n && ledger.mustRow().status === "running";
    if (!current()) return;
    const error = { code: "internal_error", message: "the gateway could not record the attempt's outcome" };
    const ended = await finish(this.room, "failed", error, [], { guard: current, also: () => ledger.endAttempt(n, "failed", error.message) });
    if (ended) this.room.followUps.add(() => this.release(n, backend?.name ?? "", "neutral"));
  }

  /** The slot of an attempt whose outcome was never recorded, once its job ended otherwise: its call is over. */
  releaseUnsettled(n: number, backend: BackendConfig | undefined): Promise<void> {
    return this.release(n, backend?.name ?? "", "neutral");
  }

  /** Attempt `n`'s slot: one already given back when the backend answered is not released twice, it gets its verdict. */
  private release(n: number, name: string, outcome: AttemptOutcome, unreachable = false): Promise<void> {
    return this.room.memory.slotReturned === n ? this.slots.judge(name, outcome) : this.slots.release(name, outcome, unreachable);
  }

  /**
   * After the job ended: leaves every line it waits in, tells the backend to stop its attempt (so whatever the
   * backend answers cannot revive the job), and gives the slot back, but not while the GPU may
   * still be working for it, or `max_concurrency` would be exceeded. A call still open here keeps
   * the slot until it ends (an interrupt makes A1111 answer at once; Cerebrium cannot be stopped)
   * and its settle releases it; RunPod stops a canceled job and ComfyUI a re-attached prompt, so their slot comes back at once;
   * anything else comes back once the backend says the stop landed, or stays taken until that
   * generation is presumably over (see the scheduler's orphan).
   */
  async leaveBackend(attempt: AttemptRow | undefined, lines: readonly string[]): Promise<void> {
    if (!attempt) {
      await this.slots.releaseAll(lines);
      return;
    }
    const { ctx, env, ledger, memory } = this.room;
    const backend = config.backend(env, attempt.backend);
    const ref = { externalId: attempt.external_id ?? undefined, taskId: taskIdOf(ledger.mustRow().id, attempt.n) };
    const stopped = backend ? withDeadline(10_000, (signal) => adapterFor(backend).cancel(ref, signal)).catch(() => false) : Promise.resolve(true);
    // In the background: a slow backend must not delay the caller.
    if (attempt.state === "running" && memory.inflight === attempt.n) ctx.waitUntil(stopped);
    else if (attempt.state === "pending" && backend && STOPPED_BY_CANCEL.has(backend.kind)) {
      // A cancel the backend did not take (unreachable, an error) leaves the generation running there.
      ctx.waitUntil(stopped.then((took) => (took ? this.slots.release(attempt.backend, "neutral") : this.slots.orphan(attempt))));
    }
    // A call no instance follows (a restart cut it), or one a cancel does not stop at once: in the
    // background, once the stop had time to land, the backend is asked (A1111 by task, ComfyUI by
    // prompt: see lost-call.ts), and the slot goes back as soon as it no longer runs the work; only
    // what it still runs, or cannot say, is held until its timeout after the call began (the
    // scheduler's orphan). Asked at the stop's own moment, a backend still says "running".
    else ctx.waitUntil(this.releaseOnceStopped(stopped, backend, attempt, ref));
  }

  private async releaseOnceStopped(stopped: Promise<boolean>, backend: BackendConfig | undefined, attempt: AttemptRow, ref: { externalId: string | undefined; taskId: string }): Promise<void> {
    await stopped;
    const call = { ...ref, askable: parseInput(this.room.ledger.mustRow()).spec.type !== "upscale", startedAt: attempt.started_at };
    for (const wait of [0, ...STOP_RECHECKS_MS]) {
      if (wait) await new Promise((r) => setTimeout(r, wait));
      if (backend && !(await canceledCallRuns(backend, call))) return this.slots.release(attempt.backend, "neutral");
    }
    await this.slots.orphan(attempt);
  }
}

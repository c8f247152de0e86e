/**
 * The attempt runner: on each step, finds a backend with a free slot and runs the job there
 * (failing over while any is left), follows the attempt (the synchronous call, polling, a lost
 * call) and enforces the deadline. Outcomes go to the settler; every write goes through the ledger.
 */
import { adapterFor } from "../../src/backends";
import type { Outcome } from "../../src/backends/types";
import type { AcquireResult } from "../../src/contracts/scheduler";
import { config, type BackendConfig } from "../../src/config";
import { callbackToken } from "../../src/jobs/callback-token";
import type { StoredJobInput } from "../../src/jobs/spec";
import { OutputStore } from "../../src/storage/images";
import { readGenerated } from "./generated";
import { AttemptCall, canResume } from "./attempt-call";
import { alarmBy } from "../alarms";
import { dueBy } from "./due";
import { fittingFor } from "./fitting";
import { checkLostCall } from "./lost-call";
import { TERMINAL } from "./ledger";
import { taskIdOf, type LiveProgress } from "./progress";
import type { JobRoom } from "./room";
import { busyRetryMs, type Settler } from "./settle";
import type { Slots } from "./slots";
import { linesOf, parseInput, triedOf, type AttemptRow, type JobRow } from "./tables";
import { timeoutMessage } from "./time-limits";
import { finish, prepareStart } from "./transitions";
import { iso, workflowOutputs } from "./view";
import { withDeadline } from "../../src/lib/deadline";

/**
 * A waiting job is in the line of every backend that could run it and is woken by whichever grants
 * it a slot first (a lost wake-up lapses there and is offered again), so waiting costs nothing per
 * second: this long backstop is all it costs.
 */
export const WAITING_BACKSTOP_MS = 5 * 60_000;
/**
 * A dispatch lost with its instance after a slot was granted (a full lease, the job already out of
 * the line) but before its attempt began would otherwise wait for the backstop: the alarm takes
 * it up again this soon, while the lease still holds the slot for it.
 */
const DISPATCH_GUARD_MS = 5_000;
/** A job that could join no line (its schedulers could not be reached) tries again this soon. */
const UNQUEUED_RETRY_MS = 15_000;
/** A job whose tenant was taken out of TENANTS waits this long before it looks again (its deadline ends it). */
const REMOVED_TENANT_RETRY_MS = 60_000;
const POLL_MAX_MS = 15_000;
/** A re-attached prompt is first asked about this soon. */
const REATTACH_POLL_MS = 1_000;


export class AttemptRunner {
  private readonly call: AttemptCall;

  constructor(
    private readonly room: JobRoom,
    private readonly slots: Slots,
    private readonly progress: LiveProgress,
    private readonly settler: Settler,
    /** Runs a step of the job (see the object's `step`): when a call ends, what follows goes out at once. */
    step: () => Promise<void>,
  ) {
    this.call = new AttemptCall(room, slots, progress, settler, step);
  }

  /** The attempt's part of a step: deadline, the attempt under way, or a dispatch that is due. */
  async advance(): Promise<void> {
    const { ledger, memory } = this.room;
    const row = ledger.row();
    if (!row) return;
    if (await this.call.retryUnapplied()) return;
    if (TERMINAL.has(row.status)) {
      // The call of a job that ended while it was out (Cerebrium's cannot be stopped) keeps its
      // slot until it ends, and its settle gives it back: the lease must not lapse meanwhile.
      const out = memory.inflight === undefined ? undefined : ledger.attempt(memory.inflight);
      if (out) await this.slots.renew(out);
      return;
    }
    if (await this.expireIfDue(row)) return;
    const attempt = ledger.currentAttempt();
    if (attempt?.state === "running") {
      if (memory.inflight === attempt.n) {
        await this.slots.renew(attempt);
        return;
      }
      // Its generation had ended, and a restart cut the writes of its images: they go on, the generation is not run again.
      const generated = parseInput(row).s3_output ? readGenerated(this.room.ctx.storage, attempt.n) : undefined;
      if (generated) {
        memory.inflight = attempt.n;
        memory.renewedAt = Date.now();
        // A slot the backend's answer gave back stays given back: its verdict follows the writes.
        if (generated.slotReturned) memory.slotReturned = attempt.n;
        const backend = config.backend(this.room.env, attempt.backend);
        this.room.ctx.waitUntil(this.call.finishStoring(attempt.n, backend, generated.images));
        await this.slots.renew(attempt, true);
        return;
      }
      if (!(await this.recoverLostCall(row, attempt))) return;
    } else if (attempt?.state === "pending") {
      if (dueBy(attempt.poll_at)) await this.pollAttempt(attempt);
      else await this.slots.renew(attempt);
      return;
    }
    const fresh = ledger.mustRow();
    const granted = memory.grantedBy !== undefined && linesOf(fresh).includes(memory.grantedBy);
    memory.grantedBy = undefined;
    if (granted || dueBy(fresh.dispatch_at)) await this.dispatch(fresh);
  }

  /**
   * The call was lost (with a previous instance, or a connection cut after the backend may have
   * taken it): not sent again until the backend no longer runs it; its slot is held until then.
   * True when the attempt failed here and the job may dispatch again.
   */
  private async recoverLostCall(row: JobRow, attempt: AttemptRow): Promise<boolean> {
    const { env, ledger, memory } = this.room;
    const lost = await checkLostCall(config.backend(env, attempt.backend), { taskId: taskIdOf(row.id, attempt.n), askable: parseInput(row).spec.type !== "upscale", startedAt: attempt.started_at, waitingUntil: attempt.poll_at });
    // Asking took time: a callback (RunPod's, for a `/run` whose answer was lost) or a cancel may have settled it.
    const still = ledger.currentAttempt();
    if (still?.n !== attempt.n || still.state !== "running" || memory.inflight === attempt.n || TERMINAL.has(ledger.mustRow().status)) return false;
    const at = Date.now();
    if ("reattach" in lost) {
      // Followed by its id from now on, never sent again: as the call it was when the backend can
      // follow it (its progress and end come as they would have), else polled.
      const backend = config.backend(env, attempt.backend);
      const adapter = backend ? adapterFor(backend) : undefined;
      if (backend && adapter && canResume(adapter)) {
        ledger.transaction(() => {
          ledger.setExternalId(attempt.n, lost.reattach);
          ledger.event("attempt.reattached", { attempt: attempt.n, backend: attempt.backend, external_id: lost.reattach, found: lost.found }, at);
        });
        memory.inflight = attempt.n;
        memory.renewedAt = at;
        this.room.ctx.waitUntil(this.call.resume(row.id, attempt.n, lost.reattach, backend, adapter));
      } else ledger.submitted(attempt.n, attempt.backend, lost.reattach, REATTACH_POLL_MS, at);
      await this.slots.renew(attempt);
      return false;
    }
    const data = { attempt: attempt.n, backend: attempt.backend, found: lost.found };
    if (lost.running) {
      // Logged once, when found (poll_at marks it: the latest the wait can end).
      if (attempt.poll_at === null) ledger.lostWaiting(attempt.n, lost.until, { ...data, waiting_until: iso(lost.until) }, at);
      await this.slots.renew(attempt);
      return false;
    }
    const tried = triedOf(row);
    // The backend's fault: it could not be reached, or it let the call go its whole timeout unanswered
    // (seen by this instance), or it still held it twice that long. Such a backend is failed over and
    // the call counts against it. A call a restart cut, waited out because the backend could not say
    // (Cerebrium, an upscale, an A1111 without its web UI), says nothing of it.
    const atFault = lost.unreachable || (lost.overdue && (memory.unanswered === attempt.n || lost.held === true));
    if (atFault) tried.add(attempt.backend);
    const message = lost.unreachable ? "the backend could not be reached" : `the call was lost: ${lost.found}`;
    ledger.transaction(() => {
      ledger.endAttempt(attempt.n, "failed", message);
      if (attempt.poll_at === null) ledger.event("attempt.lost", data, at);
      else ledger.event("attempt.failed", { attempt: attempt.n, backend: attempt.backend, code: lost.unreachable ? "backend_unavailable" : "lost", message }, at);
      ledger.redispatch(at, tried);
    });
    // Counted against it (its circuit, its recent success rate) as a 5xx is.
    await this.slots.release(attempt.backend, atFault ? "failure" : "neutral", lost.unreachable);
    return true;
  }

  /**
   * Fails a job past its deadline with `timeout` and leaves its backend (see leaveBackend: a slot
   * the GPU may still use is not given back). Checked on every heartbeat, so also while a
   * synchronous call is in flight. True when the job ended here.
   */
  private async expireIfDue(row: JobRow): Promise<boolean> {
    if (TERMINAL.has(row.status) || !dueBy(row.deadline_at)) return false;
    const attempt = this.room.ledger.currentAttempt();
    await finish(this.room, "failed", { code: "timeout", message: timeoutMessage(parseInput(row), row) }, []);
    await this.settler.leaveBackend(attempt, await this.linesToLeave(row));
    return true;
  }

  /**
   * Sends a new job's first dispatch request before its creation is written (the caller writes it
   * next): a request sent after a write is held until that write is durable (the output gate), and
   * the dispatch would wait for the creation's commit and then for the scheduler's in turn, where
   * now it waits for the longer of the two. Its first step's dispatch takes the answer up. Lost
   * with the instance, or unused, what it asked for is given back as a lost request's is: the claim
   * lapses at the scheduler, whose check finds no attempt holding it, and a wake-up finds no job
   * that wants it.
   */
  open(input: StoredJobInput): void {
    const candidates = this.candidates(input, new Set(), []);
    const first = candidates[0];
    if (!first) return;
    const { memory } = this.room;
    // As in dispatch: with one backend to choose from, the slot is asked for and the line joined at once.
    const enqueue = candidates.length === 1;
    if (enqueue) memory.joining = new Set([first.name]);
    memory.opening = { backend: first.name, enqueue, answer: this.slots.acquire(input, first, enqueue) };
  }

  /**
   * The lines a job that ends here leaves: those written, those being joined, and the one its
   * creation's request went to if no dispatch took its answer up (a job with several backends asks
   * the first without joining its line, and a slot granted there would otherwise be held until its
   * lease lapsed). That answer is awaited first, so the leaving reaches the line after the request.
   */
  async linesToLeave(row: JobRow): Promise<string[]> {
    const { memory } = this.room;
    const opening = memory.opening;
    memory.opening = undefined;
    const lines = memory.lines(linesOf(row));
    if (!opening || lines.includes(opening.backend)) return lines;
    // Only a request that did not join the line gets here (one that did is among `lines`): a grant is what it can hold.
    return (await opening.answer).status === "granted" ? [...lines, opening.backend] : lines;
  }

  /** The backends that could run the job and have not failed it; the lines it waits in first (a slot granted there is its claim). */
  private candidates(input: StoredJobInput, tried: ReadonlySet<string>, lines: readonly string[]): BackendConfig[] {
    return fittingFor(this.room.env, input).filter((b) => !tried.has(b.name)).sort((a, b) => Number(lines.includes(b.name)) - Number(lines.includes(a.name)));
  }

  /** The answer to this request if `open` sent it already (once), else the request sent now. */
  private acquire(row: JobRow, backend: BackendConfig, enqueue: boolean): Promise<AcquireResult> {
    const { memory } = this.room;
    const opening = memory.opening;
    memory.opening = undefined;
    if (opening?.backend === backend.name && opening.enqueue === enqueue) return opening.answer;
    return this.slots.acquire(row, backend, enqueue);
  }

  /**
   * Finds a backend with a free slot and runs the job there, failing over while any is left; with
   * none free, the job waits in the line of every busy one that fits and leaves every other line.
   */
  private async dispatch(row: JobRow): Promise<void> {
    const { ledger, memory } = this.room;
    const input = parseInput(row);
    const lines = linesOf(row);
    // A tenant taken out of TENANTS gets no shared GPU time: its job waits in no line, in case it comes back.
    if (!config.tenant(this.room.env, row.tenant)) {
      await this.slots.releaseAll(await this.linesToLeave(row));
      ledger.setWaiting([], Date.now() + REMOVED_TENANT_RETRY_MS);
      return;
    }
    const candidates = this.candidates(input, triedOf(row), lines);
    if (!candidates.length) {
      const failures = ledger.failures();
      // A backend that only refused the job for now (429s) is asked again, after the backoff, before the job fails.
      const tried = triedOf(row);
      const refusedForNow = [...tried].filter((name) => {
        const here = failures.filter((f) => f.backend === name);
        return here.length > 0 && here.every((f) => f.code === "backend_busy");
      });
      if (refusedForNow.length) {
        for (const name of refusedForNow) tried.delete(name);
        await this.slots.releaseAll(lines);
        ledger.transaction(() => {
          ledger.setWaiting([]);
          ledger.redispatch(Date.now() + busyRetryMs(failures.length), tried);
        });
        return;
      }
      const last = ledger.lastAttemptError();
      // Every backend lacked what the request names (an upscaler, a script): the request's fault after all.
      // (A refusal for now says nothing of what a backend has.)
      const said = failures.filter((f) => f.code !== "backend_busy");
      const code = said.length > 0 && said.every((f) => f.code === "invalid_request") ? "invalid_request" : "backend_failed";
      await finish(this.room, "failed", { code, message: last ?? "no configured backend serves this job" }, []);
      await this.slots.releaseAll(lines);
      return;
    }
    await this.guardDispatch(row);
    const busy: BackendConfig[] = [];
    const open: BackendConfig[] = [];
    let retryAt = Date.now() + UNQUEUED_RETRY_MS;
    // With one backend to choose from there is nothing to compare: the job asks for a slot and
    // joins the line in one request, which halves the scheduler's work for a burst of such jobs.
    if (candidates.length > 1) for (const backend of candidates) {
      const res = await this.acquire(row, backend, false);
      if (res.status === "granted") return this.runAttempt(ledger.mustRow(), input, backend);
      if (res.status === "busy") busy.push(backend);
      if (res.status === "open") {
        open.push(backend);
        retryAt = Math.min(retryAt, res.retry_at);
      }
    }
    // Every fitting backend is busy or open: wait in all their lines. An open backend's line too, or
    // its cool-down would end with nobody in it: its probe, then its slots, go to its line when the
    // cool-down ends, and the job takes whichever is granted first.
    const join = candidates.length === 1 ? candidates : [...busy, ...open];
    const names = new Set(join.map((b) => b.name));
    // Lines left behind (a failed-over backend).
    await this.slots.releaseAll(lines.filter((l) => !names.has(l)));
    // Known before joining, so a wake-up that comes at once finds the job wanted (see `joining`).
    memory.joining = names;
    try {
      // Joining a line the job is in keeps its place there (and puts it back if that line let it go).
      const joined = await Promise.all(join.map(async (backend) => ({ backend, res: await this.acquire(row, backend, true) })));
      const granted = joined.find((j) => j.res.status === "granted")?.backend;
      if (granted) return await this.runAttempt(ledger.mustRow(), input, granted);
      const queued = joined.filter((j) => j.res.status === "queued").map((j) => j.backend.name);
      // A scheduler that could not be reached (or a circuit that opened meanwhile) says when to try again.
      for (const { res } of joined) if (res.status === "open") retryAt = Math.min(retryAt, res.retry_at);
      await this.slots.releaseAll(joined.filter((j) => j.res.status !== "queued").map((j) => j.backend.name));
      ledger.setWaiting(queued, queued.length ? Date.now() + WAITING_BACKSTOP_MS : retryAt);
    } finally {
      memory.joining = undefined;
    }
  }

  /** See DISPATCH_GUARD_MS: the dispatch is due again soon unless this step records what came of it. */
  private async guardDispatch(row: JobRow): Promise<void> {
    const { ctx, ledger } = this.room;
    const at = Date.now() + DISPATCH_GUARD_MS;
    // A new job's dispatch is due already (the alarm set at its creation backs it): nothing to write.
    if (row.dispatch_at !== null && row.dispatch_at <= at) return;
    ledger.setWaiting(linesOf(row), at);
    await alarmBy(ctx.storage, at);
  }

  private async runAttempt(row: JobRow, input: StoredJobInput, backend: BackendConfig): Promise<void> {
    const { ctx, env, ledger, memory } = this.room;
    const now = Date.now();
    // Granted here: leave every other line it waits in (which also frees a claim one of them granted meanwhile).
    memory.grantedBy = undefined;
    await this.slots.releaseAll(memory.lines(linesOf(ledger.mustRow())).filter((l) => l !== backend.name));
    const n = ledger.nextAttemptNumber();
    // What settling the outcome reads (the end's links and their lifetime) is read before the GPU
    // starts: a configuration that breaks it fails this step, and is tried again, rather than fail
    // the settling after the generation, which would look like a lost call and run it again.
    config.retentionMs(env);
    const token = await callbackToken(env, row.id, n);
    const start = row.status === "queued" ? await prepareStart(this.room, now, backend.name) : undefined;
    // A cancel may have landed before this, or while the above was computed.
    const status = ledger.mustRow().status;
    if (TERMINAL.has(status) || status !== row.status) {
      await this.slots.release(backend.name, "neutral");
      return;
    }
    // The job's start and its first attempt in one transaction: one commit before the call goes out.
    ledger.transaction(() => {
      start?.();
      ledger.beginAttempt(n, backend.name, token, now);
    });

    // The call runs outside the alarm handler, so the heartbeat keeps beating while it is in flight
    // (it enforces the deadline meanwhile: see advance).
    memory.inflight = n;
    memory.renewedAt = now;
    ctx.waitUntil(this.call.submit(row.id, n, token, input, backend));
  }

  private async pollAttempt(attempt: AttemptRow): Promise<void> {
    const { env, ledger } = this.room;
    const backend = config.backend(env, attempt.backend);
    if (!backend || !attempt.external_id) {
      await this.settler.settle(attempt.n, backend, { kind: "failed", failure: { code: "backend_failed", message: "backend no longer configured", retryable: true } });
      return;
    }
    const input = parseInput(ledger.mustRow());
    const images = new OutputStore(env.IMAGES, input.output_prefix);
    // The adapter bounds the status call itself; a hung one comes back as unavailable, not canceled.
    const externalId = attempt.external_id;
    const outcome = await withDeadline(30_000, (signal) =>
      adapterFor(backend).poll(externalId, { samples: input.spec.samples, upscale: input.spec.type === "upscale", workflow: workflowOutputs(env, input, taskIdOf(ledger.mustRow().id, attempt.n)), signal, images }),
    ).catch((err: unknown): Outcome => ({ kind: "failed", failure: { code: "backend_unavailable", message: "the backend could not be asked", detail: String(err), retryable: true } }));
    if (outcome.kind === "pending" || (outcome.kind === "failed" && outcome.failure.code === "backend_unavailable")) {
      if (Date.now() >= attempt.started_at + backend.timeout_s * 1000) {
        // Past the backend's timeout_s, still running there or not to be asked: the attempt is
        // stopped where the backend can stop it (RunPod's cancel), and the job moves on.
        const ref = { externalId, taskId: taskIdOf(ledger.mustRow().id, attempt.n) };
        const took = await withDeadline(10_000, (signal) => adapterFor(backend).cancel(ref, signal)).catch(() => false);
        // Not stopped there: its slot stays taken while it may run (the settle's release leaves that one).
        if (!took) await this.slots.orphan(attempt, "failure");
        await this.settler.settle(attempt.n, backend, { kind: "failed", failure: { code: "timeout", message: `the backend did not finish within ${backend.timeout_s} s`, retryable: true } }, images);
        return;
      }
      // Still running there, or a status call that failed (no verdict on the generation, which may
      // well be running): keep the slot, and ask again later.
      if (outcome.kind === "pending") await this.progress.read(attempt, false);
      await this.slots.renew(attempt, true);
      ledger.pollLater(attempt.n, Math.min(POLL_MAX_MS, Math.round(attempt.poll_delay * 1.5)));
      return;
    }
    await this.settler.settle(attempt.n, backend, outcome, images);
  }
}

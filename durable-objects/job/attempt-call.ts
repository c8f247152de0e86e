/**
 * An attempt's call to its backend, run outside the alarm handler so the heartbeat keeps beating
 * while it is in flight: the generation sent (or, after a restart or a lost answer, followed again
 * where the backend can), its outcome applied, and then what follows sent out at once.
 */
import { adapterFor } from "../../src/backends";
import type { BackendAdapter, Outcome } from "../../src/backends/types";
import { config, type BackendConfig } from "../../src/config";
import { TERMINAL } from "./ledger";
import type { StoredJobInput } from "../../src/jobs/spec";
import { deadline, withDeadline } from "../../src/lib/deadline";
import { getImageBytes, OutputStore, type StoredImage } from "../../src/storage/images";
import { taskIdOf, type LiveProgress } from "./progress";
import type { JobRoom } from "./room";
import type { Settler } from "./settle";
import type { Slots } from "./slots";
import { parseInput } from "./tables";
import { fullInput } from "./view";
import { readCredentials } from "./credentials";

export type Resumable = BackendAdapter & Required<Pick<BackendAdapter, "resume">>;
export const canResume = (adapter: BackendAdapter): adapter is Resumable => adapter.resume !== undefined;

/** A workflow job's input images, read back from R2 under the names its graph loads them by. */
async function namedImages(bucket: R2Bucket, list: { name: string; key: string }[] | undefined): Promise<{ name: string; bytes: Uint8Array }[] | undefined> {
  if (!list?.length) return undefined;
  const read = await Promise.all(list.map(async ({ name, key }) => ({ name, bytes: await getImageBytes(bucket, key) })));
  return read.flatMap(({ name, bytes }) => (bytes ? [{ name, bytes }] : []));
}

export class AttemptCall {
  constructor(
    private readonly room: JobRoom,
    private readonly slots: Slots,
    private readonly progress: LiveProgress,
    private readonly settler: Settler,
    /** Runs a step of the job (see the object's `step`): when a call ends, what follows goes out at once. */
    private readonly step: () => Promise<void>,
  ) {}

  async submit(jobId: string, n: number, token: string, input: StoredJobInput, backend: BackendConfig): Promise<void> {
    const { ctx, env, memory } = this.room;
    const adapter = adapterFor(backend);
    // Progress is read beside the synchronous call, for exactly as long as it runs.
    const watch = new AbortController();
    if (adapter.progress) ctx.waitUntil(this.progress.watch(n, watch.signal));
    const images = new OutputStore(env.IMAGES, input.output_prefix);
    let returning: Promise<void> | undefined;
    // A synchronous backend that answered 200 has finished generating: the next job in line may
    // start while this answer's images are read and stored (the GPU would idle through that). The
    // verdict waits for the body (a 200 without images is a failure): settle gives it.
    const onFinished = () => {
      memory.slotReturned = n;
      returning = this.slots.release(backend.name, "later");
    };
    // Never cut short from here: the backend would go on generating with its slot given back.
    const bound = deadline(backend.timeout_s * 1000 + 5_000);
    let outcome: Outcome;
    try {
      const initImage = input.spec.init_image_key ? await getImageBytes(env.IMAGES, input.spec.init_image_key) : undefined;
      const inputImages = await namedImages(env.IMAGES, input.spec.input_images);
      outcome = await adapter.submit({
        spec: (await fullInput(env, input)).spec,
        initImage,
        inputImages,
        callbackUrl: `${input.public_base_url}/internal/callbacks/${encodeURIComponent(jobId)}/${n}/${token}`,
        callbackSecret: token,
        credentials: readCredentials(ctx.storage),
        taskId: taskIdOf(jobId, n),
        signal: bound.signal,
        images,
        onFinished,
        onProgress: (p) => this.progress.record(n, p),
        onPreview: (p) => this.progress.previewed(n, p),
      });
    } catch (err) {
      outcome = { kind: "failed", failure: { code: "backend_failed", message: "the attempt failed inside the gateway", detail: err instanceof Error ? err.message : String(err), retryable: true } };
    } finally {
      watch.abort();
      bound.clear();
    }
    await returning;
    await this.apply(n, backend, outcome, images);
  }

  /** A call followed again after a restart or a lost answer (see the runner's recoverLostCall), as `submit` follows its own. */
  async resume(jobId: string, n: number, externalId: string, backend: BackendConfig, adapter: Resumable): Promise<void> {
    const { env } = this.room;
    const input = parseInput(this.room.ledger.mustRow());
    const images = new OutputStore(env.IMAGES, input.output_prefix);
    const spec = (await fullInput(env, input)).spec;
    const outcome = await withDeadline(backend.timeout_s * 1000 + 5_000, (signal) =>
      adapter.resume(externalId, { spec, taskId: taskIdOf(jobId, n), signal, images, onProgress: (p) => this.progress.record(n, p), onPreview: (p) => this.progress.previewed(n, p) }),
    ).catch((err: unknown): Outcome => {
      // The prompt may still run there: it is looked for again on the next heartbeat, never sent again.
      console.warn("following an attempt again failed", err instanceof Error ? err.message : String(err));
      return { kind: "lost", message: "the backend could not be followed" };
    });
    await this.apply(n, backend, outcome, images);
  }

  /**
   * A call whose outcome could not be recorded (see `apply`), at each step: the job is failed for
   * it, or, once it ended otherwise (its deadline), its slot goes back, since the call is over and
   * no settle will give it. Answers whether there was one.
   */
  async retryUnapplied(): Promise<boolean> {
    const { env, ledger, memory } = this.room;
    const n = memory.unapplied;
    if (n === undefined || memory.inflight !== n) return false;
    const backend = config.backend(env, ledger.attempt(n)?.backend ?? "");
    const retry = TERMINAL.has(ledger.mustRow().status) ? this.settler.releaseUnsettled(n, backend) : this.settler.failUnsettled(n, backend);
    const done = await retry.then(
      () => true,
      (err: unknown) => (console.error("failing an unsettled attempt failed", err instanceof Error ? err.message : String(err)), false),
    );
    if (done) memory.unapplied = memory.inflight = undefined;
    return true;
  }

  /** A generation whose images were kept (see generated.ts) settled again after a restart: its writes resume. */
  async finishStoring(n: number, backend: BackendConfig | undefined, images: StoredImage[]): Promise<void> {
    await this.apply(n, backend, { kind: "done", images });
  }

  /**
   * A call's outcome applied; then its in-flight mark goes and what follows goes out. An outcome
   * that cannot be applied must not make the call look lost: a lost call is run again, and the
   * backend did the work. The job fails instead; failing that, the call stays in flight, and each
   * step tries again (see `retryUnapplied`).
   */
  private async apply(n: number, backend: BackendConfig | undefined, outcome: Outcome, images?: OutputStore): Promise<void> {
    const { memory } = this.room;
    const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
    let applied = true;
    try {
      await this.settler.settle(n, backend, outcome, images);
    } catch (err) {
      console.error("settling an attempt failed", message(err));
      applied = await this.settler.failUnsettled(n, backend).then(
        () => true,
        (e: unknown) => (console.error("failing an unsettled attempt failed", message(e)), false),
      );
    }
    // Only now: until the outcome is applied, the heartbeat must not take the call for lost.
    if (!applied) memory.unapplied = n;
    else if (memory.inflight === n) memory.inflight = undefined;
    // The terminal event, or the next attempt, goes out now.
    await this.step();
  }
}

/**
 * The job's start and end: what must be prepared before the ledger writes them (the webhook body
 * rendered by the job's dialect, a failure manifest in S3) and what follows (the tenant's index told).
 */
import { renderWebhookBody } from "../../src/contracts/renderers";
import { randomId } from "../../src/lib/crypto";
import type { JobError, WebhookEventType } from "../../src/schemas/job";
import { dropCredentials } from "./credentials";
import { dropGenerated } from "./generated";
import { hasActiveLimit, indexObject, runShard } from "../../src/tenant-shards";
import { withOutputSlots } from "../../src/webhooks/body-slots";
import { canTransition, TERMINAL } from "./ledger";
import type { JobRoom } from "./room";
import { restoreEndManifest, writeFailureManifest } from "./dialect-outputs";
import { parseInput, webhookBodiesPrefix, type JobRow, type StoredOutput, type Webhook } from "./tables";
import { snapshot } from "./view";

/** The index's end report is waited for this long at most: an unreachable index must not hold the webhook up. */
const END_REPORT_WAIT_MS = 2_000;

/**
 * A body's text longer than this is kept in R2, not in its outbox row: a row holds at most 2 MB,
 * and a body that echoes a client's input (RunPod's, with ControlNet images in it) can be larger.
 */
const MAX_ROW_BODY_CHARS = 256 * 1024;

/** The event's webhook, its body rendered as the job would be in that state; null when none goes out. */
export async function webhookFor(room: JobRoom, row: JobRow, type: WebhookEventType, now: number): Promise<Webhook | null> {
  const input = parseInput(row);
  if (!input.webhook || !input.webhook_events.includes(type)) return null;
  const rendered = await renderWebhookBody(room.env, await snapshot(room.env, room.ledger, row, { full: true }), type, now);
  if (rendered === null) return null;
  const body = withOutputSlots(rendered);
  if (body.text.length <= MAX_ROW_BODY_CHARS) return { url: input.webhook, body };
  // Progress is news for a moment, up to twice a second: an R2 object each (a Replicate input
  // echoed with a large data URI) would pile up until the job's deletion. It is not sent.
  if (type === "job.progress") return null;
  // Deleted with the job (see retention.ts); one whose event never got queued (another end won) goes then too.
  const textKey = `${webhookBodiesPrefix(row.id)}${randomId("body")}.json`;
  await room.env.IMAGES.put(textKey, body.text, { httpMetadata: { contentType: "application/json" } });
  return { url: input.webhook, body, textKey };
}

/**
 * queued → running on `backend`: renders the `job.started` body (the job as a read sees it once its
 * first attempt began there), then answers the writes that start the job (its row, event and
 * outbox row), for the caller's transaction.
 */
export async function prepareStart(room: JobRoom, now: number, backend: string): Promise<() => void> {
  const row = room.ledger.mustRow();
  const webhook = await webhookFor(room, { ...row, status: "running", started_at: now, backend }, "job.started", now);
  return () => room.ledger.start(now, webhook);
}

/**
 * Ends the job, with its event and outbox row; `also` joins the same transaction, `guard` must
 * still hold when it runs. Answers whether the job ended here.
 */
export async function finish(
  room: JobRoom,
  status: "succeeded" | "failed" | "canceled",
  error: JobError | null,
  outputs: StoredOutput[],
  opts: { guard?: () => boolean; also?: () => void } = {},
): Promise<boolean> {
  const { ledger } = room;
  const row = ledger.mustRow();
  if (!canTransition(row.status, status)) return false;
  const now = Date.now();
  const input = parseInput(row);
  const ended: JobRow = { ...row, status, completed_at: now, error: error ? JSON.stringify(error) : null, output: JSON.stringify(outputs) };
  // SD-on-EKS writes a `.out` for every task that ends, and its notification names it.
  if (status !== "succeeded") await writeFailureManifest(room.env, input, error?.message ?? "canceled");
  const webhook = await webhookFor(room, ended, `job.${status}`, now);
  // Rendering awaited: make sure nobody ended the job meanwhile.
  if (!canTransition(ledger.mustRow().status, status) || (opts.guard && !opts.guard())) {
    // Another end won, and what this one wrote before (its manifest) may have landed after the winner's.
    const winner = ledger.mustRow();
    if (TERMINAL.has(winner.status)) room.ctx.waitUntil(restoreEndManifest(room.env, input, winner));
    return false;
  }
  ledger.transaction(() => {
    opts.also?.();
    ledger.end(status, now, error, outputs, webhook);
    dropCredentials(room.ctx.storage);
    // Only a job that writes its outputs on keeps them (see settle): no other pays for the look.
    if (input.s3_output) dropGenerated(room.ctx.storage);
  });
  // The index hears of the end before the client can (the webhook, a cancel's answer): a receiver
  // that submits its next job from its handler must not find this one still counted as active.
  await reportEnd(room);
  // Every end is followed by a step (its caller's own, or a kick), which sends the event.
  await room.reschedule(true);
  return true;
}

/**
 * Tells the tenant's index the job has ended, so it stops counting as active and lists under its
 * status. Waited for at most END_REPORT_WAIT_MS, and a failure is no failure of the job: the index
 * checks its old active rows against their jobs on its own alarm, so a lost report only delays
 * the correction. (The index does not track queued vs running: both are active.)
 */
async function reportEnd(room: JobRoom): Promise<void> {
  const row = room.ledger.mustRow();
  const input = parseInput(row);
  const report = indexObject(room.env, row.tenant, row.id)
    .setStatus({ id: row.id, created_at: row.created_at, status: row.status, type: input.spec.type, track_id: input.track_id ?? null })
    .catch((err: unknown) => console.error("job index update failed; the index will check", err instanceof Error ? err.message : String(err)));
  // A tenant with max_active_jobs keeps its index at home: the run's shard, where dialects keep
  // what they track per run (RunPod's endpoint rows for /health), hears of the end too.
  if (hasActiveLimit(room.env, row.tenant)) {
    room.ctx.waitUntil(runShard(room.env, row.tenant, row.id).noteEndpointJob(row.id, row.status).catch((err: unknown) => console.error("run shard end note failed", err instanceof Error ? err.message : String(err))));
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, END_REPORT_WAIT_MS)));
  await Promise.race([report, late]).finally(() => clearTimeout(timer));
}

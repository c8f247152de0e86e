/**
 * The webhook outbox: the job's events delivered in order, one at a time, on the retry schedule,
 * each try written to the delivery log. Bodies were rendered when their event was queued (see transitions.ts).
 */
import { config } from "../../src/config";
import type { Delivery } from "../../src/schemas/job";
import type { SlottedBody } from "../../src/lib/json-slots";
import { slottedStream } from "../../src/webhooks/body-slots";
import { attemptDelivery, nextDelayMs } from "../../src/webhooks/deliver";
import { dueBy } from "./due";
import type { JobRoom } from "./room";
import type { StoredOutput } from "./tables";
import { iso } from "./view";

const MAX_DELIVERIES_PER_ALARM = 10;
/** A progress try's receiver answers within this, or loses it: the end may be queued behind it. */
const PROGRESS_DELIVERY_TIMEOUT_MS = 3_000;

export class Outbox {
  /** The delivery loop under way, if any. */
  private delivering: Promise<void> | undefined;
  /** The event whose try is out, and whether it was asked to be sent again meanwhile. */
  private inFlight: { eventId: string; again: boolean } | undefined;

  constructor(private readonly room: JobRoom) {}

  /**
   * One delivery loop at a time per instance: alarms now fire while backend calls are in flight,
   * and two loops would both send the head event (a duplicate delivery).
   */
  deliverDue(): Promise<void> {
    this.delivering ??= this.deliverLoop().finally(() => {
      this.delivering = undefined;
    });
    return this.delivering;
  }

  /** A redelivery was asked (the event is due again): a try under way must not mark it delivered. */
  requeued(eventId: string): void {
    if (this.inFlight?.eventId === eventId) this.inFlight.again = true;
  }

  /** The delivery log, as the routes show it. */
  log(): Delivery[] {
    return this.room.ledger.deliveryLog().map((d) => ({
      event_id: d.event_id,
      type: d.type,
      attempt: d.attempt,
      url: d.url,
      started_at: iso(d.started_at),
      status_code: d.status_code,
      error: d.error,
      duration_ms: d.duration_ms,
      response_body: d.response_body,
      next_attempt_at: d.next_attempt_at === null ? null : iso(d.next_attempt_at),
    }));
  }

  private async deliverLoop(): Promise<void> {
    const { env, ledger } = this.room;
    // A `job.started` that has failed its first attempt by the time the job ended goes behind the
    // terminal event: its retries (hours, on the schedule) would otherwise hold the outcome back
    // after the receiver recovers. It is still delivered, after (no event is dropped, contract §6).
    // Logged in the job's events.
    ledger.deferStarted();
    for (let i = 0; i < MAX_DELIVERIES_PER_ALARM; i++) {
      // Head of line only: a later event never overtakes an earlier one of the same job.
      const head = ledger.outboxHead();
      if (!head || !dueBy(head.next_at)) return;
      // Progress with any event behind it is old news: the terminal event never waits for it.
      if (ledger.dropIfSuperseded(head)) continue;
      // Progress is tried once: the next reading, or the end, supersedes it.
      const once = head.type === "job.progress";
      const row = ledger.mustRow();
      const tenant = config.tenant(env, row.tenant);
      const secrets = tenant?.webhook_secrets ?? [];
      // Read before the send: a configuration error after it would leave the try unrecorded and
      // the event due at once, sent again and again. Before it, the step fails and its alarm comes back.
      const schedule = config.retrySchedule(env);
      const attempt = head.attempts + 1;
      const startedAt = Date.now();
      if (!tenant) {
        // A tenant taken out of TENANTS has no secrets left to sign with: nothing goes out unsigned.
        // The try is a failed one and the event waits on the schedule (it goes if the tenant comes back).
        const delay = once ? null : nextDelayMs(schedule, attempt, null);
        const nextAt = delay === null ? null : startedAt + delay;
        ledger.delivered(head, { attempt, startedAt, state: nextAt === null ? "failed" : "pending", nextAt, status_code: null, error: "not sent: the tenant is no longer configured", duration_ms: 0, response_body: null });
        continue;
      }
      const slots = JSON.parse(head.slots) as SlottedBody["slots"];
      const text = head.text_key === null ? head.body : await env.IMAGES.get(head.text_key).then((o) => o?.text());
      if (text === undefined) {
        // Its R2 object is gone (deleted by hand): nothing can be sent, and nothing will come back.
        ledger.delivered(head, { attempt, startedAt, state: "failed", nextAt: null, status_code: null, error: "not sent: the body is no longer stored", duration_ms: 0, response_body: null });
        continue;
      }
      // A body with images is streamed from R2 as it is sent, never built whole.
      const body = slots.length ? await slottedStream(env.IMAGES, { text, slots }, (JSON.parse(row.output) as StoredOutput[]).map((o) => o.key)) : text;
      const flight = (this.inFlight = { eventId: head.event_id, again: false });
      const timeoutMs = once ? PROGRESS_DELIVERY_TIMEOUT_MS : undefined;
      const result = await attemptDelivery({ url: head.url, eventId: head.event_id, body, secrets, timeoutMs, onSent: () => this.room.followUps.sent() }).finally(() => {
        this.inFlight = undefined;
      });
      this.room.followUps.run();
      const delay = result.verdict === "retry" && !once ? nextDelayMs(schedule, attempt, result.retry_after_ms) : null;
      // Redelivered while this try was out: due again at once, whatever this try's answer.
      const nextAt = flight.again ? Date.now() : delay === null ? null : Date.now() + delay;
      const state = flight.again ? "pending" : result.verdict === "retry" ? (nextAt === null ? "failed" : "pending") : result.verdict;
      ledger.delivered(head, { attempt, startedAt, state, nextAt, status_code: result.status_code, error: result.error, duration_ms: result.duration_ms, response_body: result.response_body });
    }
  }
}

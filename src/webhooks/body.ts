import type { JobSnapshot } from "../jobs/results";
import type { WebhookEventType } from "../schemas/job";

/** The canonical event body: `{type, timestamp, data: <job as GET returns it>}`. */
export function canonicalWebhookBody(type: WebhookEventType, snapshot: JobSnapshot, nowMs: number): unknown {
  return { type, timestamp: new Date(nowMs).toISOString(), data: snapshot.job };
}

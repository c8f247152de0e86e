import type { Env } from "../env";
import type { JobSnapshot } from "../jobs/results";
import type { WebhookEventType } from "../schemas/job";
import { canonicalWebhookBody } from "../webhooks/body";

/**
 * The body of a webhook event in the shape of the dialect the job came in through, or null when
 * that dialect has no such event (its clients only hear about the end).
 */
export async function renderWebhookBody(_env: Env, snapshot: JobSnapshot, type: WebhookEventType, nowMs: number): Promise<unknown | null> {
  switch (snapshot.input.dialect) {
    default:
      return canonicalWebhookBody(type, snapshot, nowMs);
  }
}

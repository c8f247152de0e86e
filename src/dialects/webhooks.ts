import type { Env } from "../env";
import type { JobSnapshot } from "../jobs/results";
import type { WebhookEventType } from "../schemas/job";
import { canonicalWebhookBody } from "../webhooks/body";
import { outputPlaces } from "../webhooks/body-slots";
import { toCerebrium } from "./cerebrium/translate";
import { toEksNotification } from "./eks/translate";
import { toModelsLabWebhook } from "./modelslab/translate";
import { toRunPodStatus } from "./runpod/translate";

/**
 * The body of a webhook event in the shape of the dialect the job came in through, or null when
 * that dialect has no such event (its clients only hear about the end). A1111 has no webhooks of
 * its own: its jobs notify the tenant's default webhook in the canonical shape.
 */
export async function renderWebhookBody(env: Env, snapshot: JobSnapshot, type: WebhookEventType, nowMs: number): Promise<unknown | null> {
  const dialect = snapshot.input.dialect;
  if (dialect === "v1" || dialect === "a1111") return canonicalWebhookBody(type, snapshot, nowMs);
  if (type === "job.started") return null;
  switch (dialect) {
    case "modelslab":
      return toModelsLabWebhook(env, snapshot, outputPlaces);
    case "cerebrium":
      return toCerebrium(snapshot, outputPlaces);
    case "runpod":
      return toRunPodStatus(snapshot, outputPlaces, nowMs);
    case "eks":
      return toEksNotification(env, snapshot);
  }
}

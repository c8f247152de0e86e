import type { Env } from "../env";
import type { JobSnapshot } from "../jobs/results";
import type { WebhookEventType } from "../schemas/job";
import { canonicalWebhookBody } from "../webhooks/body";
import { imageRefs } from "../webhooks/image-refs";
import { toCerebrium } from "./cerebrium";
import { toEksNotification } from "./eks";
import { toModelsLab } from "./modelslab";
import { toRunPodStatus } from "./runpod";

/**
 * The body of a webhook event in the shape of the dialect the job came in through, or null when
 * that dialect has no such event (its clients only hear about the end).
 */
export async function renderWebhookBody(env: Env, snapshot: JobSnapshot, type: WebhookEventType, nowMs: number): Promise<unknown | null> {
  const dialect = snapshot.input.dialect;
  if (dialect === "v1" || dialect === "a1111") return canonicalWebhookBody(type, snapshot, nowMs);
  if (type === "job.started") return null;
  switch (dialect) {
    case "modelslab":
      return toModelsLab(env, snapshot, imageRefs);
    case "cerebrium":
      return toCerebrium(snapshot, imageRefs);
    case "runpod":
      return toRunPodStatus(snapshot, imageRefs);
    case "eks":
      return toEksNotification(env, snapshot);
  }
}

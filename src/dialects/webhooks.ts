import { beforeEnd, registerWebhookRenderer } from "../contracts/renderers";
import { canonicalWebhookBody } from "../webhooks/body";
import { outputPlaces } from "../webhooks/body-slots";
import { toCerebrium } from "./cerebrium/translate";
import { toEksNotification } from "./eks/translate";
import { toModelsLabWebhook } from "./modelslab/translate";
import { toPrediction } from "./replicate/prediction";
import { toRunPodWebhook } from "./runpod/translate";

/**
 * Registers each dialect's webhook body (see src/contracts/renderers.ts). A1111 has no webhooks
 * of its own: its jobs notify the tenant's default webhook in the canonical shape. The other
 * dialects' clients only hear about the end: they have no `job.started`.
 */
export function registerWebhookRenderers(): void {
  registerWebhookRenderer("v1", (_env, snapshot, type, nowMs) => canonicalWebhookBody(type, snapshot, nowMs));
  registerWebhookRenderer("a1111", (_env, snapshot, type, nowMs) => canonicalWebhookBody(type, snapshot, nowMs));
  registerWebhookRenderer("modelslab", (env, snapshot, type) => (beforeEnd(type) ? null : toModelsLabWebhook(env, snapshot, outputPlaces)));
  registerWebhookRenderer("cerebrium", (_env, snapshot, type) => (beforeEnd(type) ? null : toCerebrium(snapshot, outputPlaces)));
  registerWebhookRenderer("runpod", (_env, snapshot, type, nowMs) => (beforeEnd(type) ? null : toRunPodWebhook(snapshot, outputPlaces, nowMs)));
  // Replicate's `start` and `logs` events are the prediction as it starts and as it runs; the filter chose which events come at all.
  registerWebhookRenderer("replicate", (env, snapshot) => toPrediction(env, snapshot));
  registerWebhookRenderer("eks", (env, snapshot, type) => (beforeEnd(type) ? null : toEksNotification(env, snapshot)));
}

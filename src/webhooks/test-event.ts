import { badConfig, config } from "../config";
import type { Env } from "../env";
import { invalid } from "../errors";
import { randomId } from "../lib/crypto";
import { checkOutboundUrl } from "../lib/url-guard";
import { attemptDelivery } from "./deliver";

/**
 * Sends one signed `webhook.test` event to `url` (or the tenant's default webhook) and reports
 * what the receiver said. Sent once, never retried: it is a check, not an event to deliver.
 */
export async function sendTestEvent(env: Env, tenant: string, url: string | undefined) {
  const tenantConfig = config.tenant(env, tenant);
  const target = url ?? tenantConfig?.default_webhook;
  if (!target) throw invalid("url", "required: the tenant has no default_webhook");
  const checked = checkOutboundUrl(target, { allowPrivate: config.allowPrivateUrls(env) });
  // A default_webhook the gateway may not call is the operator's to fix, as on a job's submit.
  if (!checked.ok) throw url === undefined ? badConfig("TENANTS", `${tenant}.default_webhook: ${checked.reason}`) : invalid("url", checked.reason);
  const webhookId = randomId("msg");
  const body = JSON.stringify({ type: "webhook.test", timestamp: new Date().toISOString(), data: { tenant, url: target } });
  const result = await attemptDelivery({ url: target, eventId: webhookId, body, secrets: tenantConfig?.webhook_secrets ?? [] });
  return {
    webhook_id: webhookId,
    status_code: result.status_code,
    error: result.error,
    duration_ms: result.duration_ms,
    response_body: result.response_body,
    signature_headers: result.signature_headers,
  };
}

import { createRoute, z } from "@hono/zod-openapi";
import { createApp } from "../app";
import { tenantAuth } from "../middleware/auth";
import { sendTestEvent } from "../webhooks/test-event";

const TestRequestSchema = z.object({ url: z.string().min(1).max(2048).optional().openapi({ description: "defaults to the tenant's default_webhook" }) }).strict().openapi("WebhookTestRequest");
const TestResultSchema = z
  .object({
    webhook_id: z.string(),
    status_code: z.number().int().nullable(),
    error: z.string().nullable(),
    duration_ms: z.number().int(),
    response_body: z.string().nullable(),
    signature_headers: z.object({ "webhook-id": z.string(), "webhook-timestamp": z.string(), "webhook-signature": z.string() }),
  })
  .openapi("WebhookTestResult");

export const webhooks = createApp();
// Only its own route: `/v1/webhooks/default/secret` is the Replicate dialect's, with its own auth.
webhooks.use("/v1/webhooks/test", tenantAuth());
// Every field is optional: a bare POST (no body at all) means "send it to my default_webhook".
webhooks.on("POST", "/v1/webhooks/test", async (c, next) => {
  // Read through Hono's cache (the JSON depth check read the body already); the empty body's cached text goes with it.
  if (!(await c.req.text()).trim()) {
    c.req.raw = new Request(c.req.raw.url, { method: c.req.method, headers: c.req.raw.headers, body: "{}" });
    c.req.bodyCache = {};
  }
  await next();
});
webhooks.openapi(
  createRoute({
    method: "post",
    path: "/v1/webhooks/test",
    summary: "Send a signed webhook.test event once and answer with what the receiver said",
    request: { body: { content: { "application/json": { schema: TestRequestSchema } }, required: true } },
    responses: {
      200: { content: { "application/json": { schema: TestResultSchema } }, description: "What the receiver answered (status_code null when it could not be reached)" },
      422: { description: "No url and no default_webhook, or a url the gateway may not call" },
    },
  }),
  async (c) => {
    return c.json(await sendTestEvent(c.env, c.var.tenant, c.req.valid("json").url), 200);
  },
);

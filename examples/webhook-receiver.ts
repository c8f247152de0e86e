/**
 * A minimal Easel webhook receiver: verifies every delivery with the `standardwebhooks` package and
 * the tenant's `whsec_` secret, and handles each event once (deduplicated by `webhook-id`).
 *
 *   WEBHOOK_SECRET=whsec_... PORT=9000 npm run receiver
 */
import { createServer } from "node:http";
import { Webhook, WebhookVerificationError } from "standardwebhooks";

const secret = process.env.WEBHOOK_SECRET;
if (!secret) throw new Error("set WEBHOOK_SECRET to the tenant's whsec_ secret");
const webhook = new Webhook(secret);
// A real receiver keeps this in its database, next to the work the event triggers.
const seen = new Set<string>();

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const text = (v: unknown): string | undefined => (typeof v === "string" || typeof v === "number" ? String(v) : undefined);

/**
 * `/v1` jobs come as `{type, timestamp, data: <job>}` (a test as `webhook.test`); a job made through
 * a dialect comes in that API's own body (RunPod's `{id, status, output}`, Replicate's prediction,
 * ModelsLab's, SD-on-EKS's, Cerebrium's `{run_id, result}`, ComfyUI's history entry), signed the same way.
 */
function handle(event: Record<string, unknown>): void {
  if (typeof event.type === "string") {
    const data = obj(event.data);
    console.log([event.type, text(data.id), data.track_id ? `track_id=${text(data.track_id)}` : undefined].filter(Boolean).join(" "));
    return;
  }
  const id = text(event.id) ?? text(event.request_id) ?? text(event.run_id) ?? text(event.prompt_id) ?? "";
  // Cerebrium's `result` is null when the run failed; SD-on-EKS's is true or false.
  const result = event.result === null || event.result === false ? "failed" : event.result !== undefined ? "succeeded" : "?";
  const status = text(event.status) ?? text(obj(event.status).status_str) ?? result;
  console.log(`dialect event ${id} status=${status}`);
}

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    try {
      const event = webhook.verify(body, headers) as Record<string, unknown>;
      const id = headers["webhook-id"] ?? "";
      if (!seen.has(id)) {
        handle(event);
        // Marked only once handled: a delivery whose handling failed is retried, and handled then.
        seen.add(id);
      }
      res.writeHead(204).end();
    } catch (err) {
      res.writeHead(err instanceof WebhookVerificationError ? 400 : 500).end();
    }
  });
}).listen(Number(process.env.PORT ?? 9000), "127.0.0.1", () => console.log(`receiver on http://127.0.0.1:${process.env.PORT ?? 9000}`));

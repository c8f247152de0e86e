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

/**
 * `/v1` jobs come as `{type, timestamp, data: <job>}`; a job made through a dialect comes in that
 * API's own body (RunPod's `{id, status, output}`, Replicate's prediction, ModelsLab's, SD-on-EKS's), signed the same way.
 */
function handle(event: Record<string, unknown>): void {
  const data = event.data as { id?: string; status?: string; track_id?: string | null } | undefined;
  if (typeof event.type === "string" && data) console.log(`${event.type} ${data.id} track_id=${data.track_id ?? null}`);
  else console.log(`dialect event ${String(event.id ?? event.request_id ?? "")} status=${String(event.status ?? event.result ?? "")}`);
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

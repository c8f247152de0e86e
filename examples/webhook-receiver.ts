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

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    try {
      const event = webhook.verify(body, headers) as { type: string; data: { id: string; track_id: string | null } };
      const id = headers["webhook-id"] ?? "";
      if (!seen.has(id)) {
        seen.add(id);
        console.log(`${event.type} ${event.data.id} track_id=${event.data.track_id}`);
      }
      res.writeHead(204).end();
    } catch (err) {
      res.writeHead(err instanceof WebhookVerificationError ? 400 : 500).end();
    }
  });
}).listen(Number(process.env.PORT ?? 9000), "127.0.0.1", () => console.log(`receiver on http://127.0.0.1:${process.env.PORT ?? 9000}`));

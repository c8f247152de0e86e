/**
 * A webhook receiver for tests: answers as scripted, records every delivery, and verifies each
 * with the `standardwebhooks` package (an implementation independent of the gateway's own).
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Webhook } from "standardwebhooks";

export interface Delivery {
  path: string;
  headers: Record<string, string>;
  body: string;
  json: unknown;
  receivedAt: number;
  /** `performance.now()` of this process once the body was in, before it was parsed or verified: for timings taken in this process. */
  arrivedAt: number;
  /** One entry per configured secret: whether that secret verifies the delivery. */
  verified: boolean[];
  /** The status the receiver answered; null while it hangs or when it reset the connection. */
  answered: number | null;
}

/** "hang": never answered (until close); "reset": the connection dropped once the body is in. */
export type Scripted = { status: number; headers?: Record<string, string>; body?: string } | "hang" | "reset";

function flatten(h: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")]));
}

/** `answer` decides each reply (after any scripted ones); by default 200. */
export async function startReceiver(opts: { secrets: string[]; answer?: (d: Delivery) => Scripted }) {
  const deliveries: Delivery[] = [];
  const script: Scripted[] = [];
  const hooks = opts.secrets.map((s) => new Webhook(s));
  const open = new Set<Socket>();
  const hanging = new Set<ServerResponse>();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const arrivedAt = performance.now();
      const body = Buffer.concat(chunks).toString("utf8");
      const headers = flatten(req.headers);
      let json: unknown = undefined;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const verified = hooks.map((h) => {
        try {
          h.verify(body, headers);
          return true;
        } catch {
          return false;
        }
      });
      const delivery: Delivery = { path: req.url ?? "/", headers, body, json, receivedAt: Date.now(), arrivedAt, verified, answered: null };
      deliveries.push(delivery);
      const next = script.shift() ?? opts.answer?.(delivery) ?? { status: 200 };
      delivery.answered = typeof next === "string" ? null : next.status;
      if (next === "hang") {
        hanging.add(res);
        return;
      }
      if (next === "reset") {
        req.socket.destroy();
        return;
      }
      res.writeHead(next.status, { "content-type": "text/plain", ...next.headers });
      res.end(next.body ?? "");
    });
  });
  server.on("connection", (s) => {
    open.add(s);
    s.on("close", () => open.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    deliveries,
    /** Answers the next deliveries in this order; after that, 200. */
    script: (responses: Scripted[]) => void script.push(...responses),
    async waitFor(pred: (d: Delivery) => boolean, timeoutMs: number): Promise<Delivery> {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        const hit = deliveries.find(pred);
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`no matching delivery within ${timeoutMs} ms (got ${deliveries.length})`);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

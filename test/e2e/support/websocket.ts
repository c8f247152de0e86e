/**
 * A minimal WebSocket client for end-to-end tests (Node 20 has no global WebSocket): connects with
 * any headers, collects the JSON text messages, and waits (bounded) for one that matches.
 */
import { request } from "node:http";
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import { acceptKey, encodeFrame, FrameReader } from "../../../gpu-simulator/websocket";

export type SocketMessage = { type: string; data: Record<string, unknown> };

export interface TestSocket {
  messages: SocketMessage[];
  /** Binary frames (ComfyUI's previews), in order. */
  binary: Buffer[];
  /** Every message, text and binary, in the order it came (a ComfyUI client reads frames by the node executing). */
  received: (SocketMessage | Buffer)[];
  /** The first message (from `from` on) matching, waiting up to `timeoutMs`. */
  waitFor(match: (m: SocketMessage) => boolean, timeoutMs?: number, from?: number): Promise<SocketMessage>;
  /** Sends a text frame, masked as a client must. */
  send(text: string): void;
  close(): void;
}

/** Opens `ws://…`; rejects with the HTTP status when the server refuses the upgrade. */
export function openSocket(url: string, headers: Record<string, string> = {}): Promise<TestSocket> {
  const key = randomBytes(16).toString("base64");
  return new Promise((resolve, reject) => {
    const req = request(url.replace(/^ws/, "http"), { headers: { ...headers, connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": key } });
    req.on("response", (res) => {
      res.resume();
      reject(new Error(`upgrade refused: ${res.statusCode}`));
    });
    req.on("error", reject);
    req.on("upgrade", (res, socket: Duplex, head: Buffer) => {
      if (res.headers["sec-websocket-accept"] !== acceptKey(key)) return reject(new Error("bad Sec-WebSocket-Accept"));
      const messages: SocketMessage[] = [];
      const binary: Buffer[] = [];
      const received: (SocketMessage | Buffer)[] = [];
      const waiters = new Set<() => void>();
      const reader = new FrameReader();
      const take = (chunk: Buffer) => {
        const frames = reader.push(chunk);
        if (frames === "too-large") return void socket.destroy();
        for (const f of frames) {
          if (f.opcode === 0x1) {
            const m = JSON.parse(f.payload.toString("utf8")) as SocketMessage;
            messages.push(m);
            received.push(m);
          } else if (f.opcode === 0x2) {
            binary.push(f.payload);
            received.push(f.payload);
          }
        }
        for (const w of waiters) w();
      };
      // Frames that came with the handshake's answer arrive in `head`, not as data.
      take(head);
      socket.on("data", take);
      socket.on("error", () => undefined);
      resolve({
        messages,
        binary,
        received,
        waitFor: (match, timeoutMs = 10_000, from = 0) =>
          new Promise((ok, fail) => {
            const check = () => {
              const found = messages.slice(from).find(match);
              if (!found) return;
              clearTimeout(timer);
              waiters.delete(check);
              ok(found);
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages.map((m) => m.type))}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          }),
        send: (text) => void socket.write(encodeFrame(0x1, Buffer.from(text, "utf8"), true)),
        close: () => socket.end(encodeFrame(0x8, Buffer.from([0x03, 0xe8]), true)),
      });
    });
    req.end();
  });
}

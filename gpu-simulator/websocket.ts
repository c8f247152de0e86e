/**
 * The little of RFC 6455 the simulator's ComfyUI `/ws` needs: the upgrade handshake, unmasked text
 * frames out, and reading a peer's frames (masked from a client, unmasked from a server) to answer
 * ping and close. Tests use the same reader as a client.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** Largest frame accepted from a peer: ComfyUI clients only send small JSON. */
const MAX_INCOMING = 1024 * 1024;

export const acceptKey = (key: string) => createHash("sha1").update(key + GUID).digest("base64");

export interface Frame {
  opcode: number;
  payload: Buffer;
}

/** Encodes one final frame; `mask` for a client's frames. */
export function encodeFrame(opcode: number, payload: Buffer, mask = false): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126) {
    head[0] = 0x80 | opcode;
    head[1] = len < 65536 ? 126 : 127;
    if (len < 65536) head.writeUInt16BE(len, 2);
    else head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!mask) return Buffer.concat([head, payload]);
  head[1] = (head[1] ?? 0) | 0x80;
  const key = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([head, key, Buffer.from(payload.map((b, i) => b ^ (key[i % 4] ?? 0)))]);
}

/** Splits a byte stream into frames (fragments are not reassembled: nobody here sends them). */
export class FrameReader {
  private buf = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] | "too-large" {
    this.buf = Buffer.concat([this.buf, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      if (this.buf.length < 2) return frames;
      const b1 = this.buf[1] ?? 0;
      let len = b1 & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buf.length < 4) return frames;
        len = this.buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return frames;
        len = Number(this.buf.readBigUInt64BE(2));
        at = 10;
      }
      if (len > MAX_INCOMING * 64) return "too-large";
      const masked = (b1 & 0x80) !== 0;
      const end = at + (masked ? 4 : 0) + len;
      if (this.buf.length < end) return frames;
      const key = masked ? this.buf.subarray(at, at + 4) : undefined;
      const body = Buffer.from(this.buf.subarray(end - len, end));
      if (key) for (let i = 0; i < body.length; i++) body[i] = (body[i] ?? 0) ^ (key[i % 4] ?? 0);
      frames.push({ opcode: (this.buf[0] ?? 0) & 0x0f, payload: body });
      this.buf = this.buf.subarray(end);
    }
  }
}

export interface ServerSocket {
  sendText(text: string): void;
  sendBinary(bytes: Buffer): void;
  close(): void;
  onClose(fn: () => void): void;
  onText(fn: (text: string) => void): void;
}

/** Completes a WebSocket upgrade; undefined (and the socket refused) when the request is not one. */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex): ServerSocket | undefined {
  const key = req.headers["sec-websocket-key"];
  if (typeof key !== "string" || req.headers.upgrade?.toLowerCase() !== "websocket") {
    socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    return undefined;
  }
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
  const reader = new FrameReader();
  const closers: (() => void)[] = [];
  const texts: ((t: string) => void)[] = [];
  let open = true;
  const finish = () => {
    if (!open) return;
    open = false;
    for (const fn of closers) fn();
  };
  socket.on("data", (chunk: Buffer) => {
    const frames = reader.push(chunk);
    if (frames === "too-large" || frames.some((f) => f.payload.length > MAX_INCOMING)) return void socket.destroy();
    for (const f of frames) {
      if (f.opcode === 0x8) {
        if (open) socket.end(encodeFrame(0x8, f.payload.subarray(0, 2)));
        finish();
      } else if (f.opcode === 0x9) socket.write(encodeFrame(0xa, f.payload));
      else if (f.opcode === 0x1) for (const fn of texts) fn(f.payload.toString("utf8"));
    }
  });
  socket.on("close", finish);
  socket.on("error", finish);
  return {
    sendText: (text) => {
      if (open) socket.write(encodeFrame(0x1, Buffer.from(text, "utf8")));
    },
    sendBinary: (bytes) => {
      if (open) socket.write(encodeFrame(0x2, bytes));
    },
    close: () => {
      if (open) socket.end(encodeFrame(0x8, Buffer.from([0x03, 0xe8])));
      finish();
    },
    onClose: (fn) => void closers.push(fn),
    onText: (fn) => void texts.push(fn),
  };
}

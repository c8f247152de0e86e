import { fixedLength, type StreamedBody } from "../lib/json-slots";
import { signatureHeader } from "./sign";
import { fetchPastStaleConnections } from "../lib/stale-connections";
import { deadline } from "../lib/deadline";

export const DELIVERY_TIMEOUT_MS = 15_000;
const MAX_LOGGED_BODY = 1024;

export interface AttemptResult {
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  response_body: string | null;
  /** How the attempt ends the event's delivery: delivered, gone (410), or retry later. */
  verdict: "delivered" | "gone" | "retry";
  /** A `Retry-After` the receiver asked for with a 429 or 503, in ms. */
  retry_after_ms: number | null;
  /** The Standard Webhooks headers this attempt carried. */
  signature_headers: { "webhook-id": string; "webhook-timestamp": string; "webhook-signature": string };
}

function retryAfterMs(value: string | null, nowMs: number): number | null {
  if (!value) return null;
  const secs = Number(value);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

async function readCapped(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  // Only the first KiB is kept; the rest is not read, so a huge answer costs nothing.
  while (size < MAX_LOGGED_BODY) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  await reader.cancel().catch(() => undefined);
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all.subarray(0, MAX_LOGGED_BODY));
}

/**
 * One signed POST of one event. The body is sent byte for byte as stored; only the timestamp
 * and signatures are fresh, so a receiver's replay window never rejects a late retry. A body
 * with images is streamed: read once to sign it, once more to send it.
 */
export async function attemptDelivery(opts: {
  url: string;
  eventId: string;
  body: string | StreamedBody;
  secrets: string[];
  nowMs?: number;
  /** Called once the request has been handed to the runtime, before its answer. */
  onSent?: () => void;
  /** How long the receiver has to answer; DELIVERY_TIMEOUT_MS by default. */
  timeoutMs?: number;
}): Promise<AttemptResult> {
  const started = Date.now();
  const timestamp = Math.floor((opts.nowMs ?? started) / 1000);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "Easel-Webhooks/1",
    "webhook-id": opts.eventId,
    "webhook-timestamp": String(timestamp),
  };
  if (opts.secrets.length) headers["webhook-signature"] = await signatureHeader(opts.secrets, opts.eventId, timestamp, opts.body);
  const signature_headers = { "webhook-id": opts.eventId, "webhook-timestamp": String(timestamp), "webhook-signature": headers["webhook-signature"] ?? "" };
  const timeoutMs = opts.timeoutMs ?? DELIVERY_TIMEOUT_MS;
  const timeout = deadline(timeoutMs);
  try {
    const body = opts.body;
    // A streamed body is opened afresh for each send.
    const send = () => fetch(opts.url, { method: "POST", headers, body: typeof body === "string" ? body : fixedLength(body), redirect: "manual", signal: timeout.signal });
    const answered = fetchPastStaleConnections(send, timeout.signal);
    opts.onSent?.();
    const res = await answered;
    const response_body = await readCapped(res).catch(() => "");
    const status = res.status;
    const verdict = status >= 200 && status < 300 ? "delivered" : status === 410 ? "gone" : "retry";
    return {
      status_code: status,
      error: verdict === "retry" ? `receiver answered ${status}` : null,
      duration_ms: Date.now() - started,
      response_body,
      verdict,
      retry_after_ms: status === 429 || status === 503 ? retryAfterMs(res.headers.get("retry-after"), Date.now()) : null,
      signature_headers,
    };
  } catch (err) {
    const error = timeout.signal.aborted ? `timeout after ${timeoutMs / 1000} s` : `network error: ${err instanceof Error ? err.message : String(err)}`;
    return { status_code: null, error, duration_ms: Date.now() - started, response_body: null, verdict: "retry", retry_after_ms: null, signature_headers };
  } finally {
    timeout.clear();
  }
}

/**
 * The longest `Retry-After` honoured: a receiver's answer must not hold an event (and its job, kept
 * until its deliveries end) for a year, nor name a time past what a date or an alarm can hold.
 */
export const MAX_RETRY_AFTER_MS = 24 * 3600_000;

/** Delay before attempt `attempt + 1` (attempts count from 1), or null when the schedule is spent. */
export function nextDelayMs(schedule: number[], attempt: number, retryAfter: number | null, random = Math.random()): number | null {
  const base = schedule[attempt - 1];
  if (base === undefined) return null;
  // Up to 10% jitter so jobs that failed together do not retry in lockstep.
  const jittered = base * 1000 * (1 + 0.1 * random);
  return Math.max(jittered, Math.min(retryAfter ?? 0, MAX_RETRY_AFTER_MS));
}

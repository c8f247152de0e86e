/**
 * The job's SQLite tables and the rows read from them. Only the ledger (ledger.ts) writes them.
 */
import type { StoredJobInput } from "../../src/jobs/spec";
import type { JobStatus, WebhookEventType } from "../../src/schemas/job";
import type { StoredImage } from "../../src/storage/images";
import type { SlottedBody } from "../../src/lib/json-slots";

/** An asynchronous backend's status is asked for no sooner than this after the last time. */
export const POLL_MIN_MS = 1_000;

export type JobRow = {
  id: string;
  tenant: string;
  status: JobStatus;
  input: string;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  backend: string | null;
  output: string;
  error: string | null;
  deadline_at: number;
  dispatch_at: number | null;
  tried: string;
  /** The lines the job waits in: a JSON array of backend names (one plain name in a row written before it could wait in several). */
  waiting_on: string | null;
};

export type AttemptRow = {
  n: number;
  backend: string;
  state: "running" | "pending" | "done" | "failed" | "canceled";
  external_id: string | null;
  poll_at: number | null;
  poll_delay: number;
  token: string;
  started_at: number;
};

export type ProgressRow = { attempt: number; data: string; event_data: string | null; event_at: number | null };

/** `text_key`: a body too large for a row, kept in R2 there (`body` is then empty). */
export type OutboxRow = { event_id: string; type: WebhookEventType; url: string; body: string; slots: string; text_key: string | null; attempts: number; next_at: number | null };

export type DeliveryRow = {
  event_id: string;
  type: string;
  attempt: number;
  url: string;
  started_at: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  response_body: string | null;
  next_attempt_at: number | null;
};

export type StoredOutput = StoredImage & { seed: number | null };

/** A webhook event to queue with a state change: its body rendered ahead (see transitions.ts). */
/** `textKey`: where the body's text is, when it is in R2 rather than in `body.text` (see transitions.ts). */
export type Webhook = { url: string; body: SlottedBody; textKey?: string };
/** Where a job's webhook bodies too large for its rows are kept. */
export const webhookBodiesPrefix = (runId: string): string => `webhooks/${runId}/`;

export const parseInput = (row: JobRow): StoredJobInput => JSON.parse(row.input) as StoredJobInput;
export const triedOf = (row: JobRow): Set<string> => new Set<string>(JSON.parse(row.tried) as string[]);
/** The backends in whose lines the job waits; a row kept from before held one name, not a list. */
export const linesOf = (row: JobRow): string[] => {
  const w = row.waiting_on;
  if (w === null || w === "") return [];
  return w.startsWith("[") ? (JSON.parse(w) as string[]) : [w];
};

export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS job (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, status TEXT NOT NULL, input TEXT NOT NULL,
    created_at INTEGER NOT NULL, started_at INTEGER, completed_at INTEGER, backend TEXT,
    output TEXT NOT NULL DEFAULT '[]', error TEXT, deadline_at INTEGER NOT NULL,
    dispatch_at INTEGER, tried TEXT NOT NULL DEFAULT '[]', waiting_on TEXT);
  CREATE TABLE IF NOT EXISTS progress (attempt INTEGER PRIMARY KEY, data TEXT NOT NULL, event_data TEXT, event_at INTEGER);
  CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, at INTEGER NOT NULL, data TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS attempts (
    n INTEGER PRIMARY KEY, backend TEXT NOT NULL, state TEXT NOT NULL, external_id TEXT,
    poll_at INTEGER, poll_delay INTEGER NOT NULL DEFAULT ${POLL_MIN_MS}, token TEXT NOT NULL,
    started_at INTEGER NOT NULL, ended_at INTEGER, error TEXT);
  CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, url TEXT NOT NULL,
    body TEXT NOT NULL, slots TEXT NOT NULL DEFAULT '[]', attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER, state TEXT NOT NULL,
    text_key TEXT);
  CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, type TEXT NOT NULL, attempt INTEGER NOT NULL,
    url TEXT NOT NULL, started_at INTEGER NOT NULL, status_code INTEGER, error TEXT, duration_ms INTEGER NOT NULL,
    response_body TEXT, next_attempt_at INTEGER);
`;

import type { Job, JobEvent, Delivery } from "../schemas/job";
import type { StoredJobInput } from "./spec";

/** A job with what dialects need to render it: its stored input and its outputs' R2 keys. */
export interface JobSnapshot {
  job: Job;
  input: StoredJobInput;
  output_keys: string[];
}

/** Durable Object methods answer with these unions: across RPC only an error's message survives. */
export type Failure = { ok: false; code: "not_found" | "conflict"; message: string };
export type Result<T> = ({ ok: true } & T) | Failure;

export type { Job, JobEvent, Delivery };

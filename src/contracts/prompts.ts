/** The RPC surface of the per-tenant ComfyUI object (durable-objects/comfy-socket.ts): its prompts and its sockets. */
import type { JobSubscriberRpc } from "./job-feed";

/** The header the Worker names the connecting client with, once it has authenticated the tenant. */
export const CLIENT_ID_HEADER = "x-easel-comfy-client";

export type PromptState = "queued" | "running" | "ended";

export interface TrackedPrompt {
  prompt_id: string;
  run_id: string;
  client_id: string | null;
  /** The tenant's running count, as ComfyUI numbers its queue. */
  number: number;
  state: PromptState;
  created_at: number;
}

/** The most prompts one `activePage` answers with, and one `settle` takes: an RPC's answer stays small. */
export const ACTIVE_PAGE_MAX = 1_000;

/** A page of the tenant's unended prompts, and how many there are in all (the object's own COUNT, not the page's). */
export type ActivePage = { ok: true; prompts: TrackedPrompt[]; queued: number; running: number };

export interface PromptTrackerRpc extends JobSubscriberRpc {
  /** Takes `prompt_id` for a job about to be created; false when the tenant already has that prompt id. */
  reserve(p: { prompt_id: string; run_id: string; client_id: string | null }): Promise<{ ok: true; number: number } | { ok: false }>;
  /** Gives back a prompt id whose job could not be created. */
  drop(promptId: string): Promise<void>;
  lookup(promptId: string): Promise<TrackedPrompt | null>;
  /** The latest prompts, newest first. */
  latest(limit: number): Promise<TrackedPrompt[]>;
  /** The prompts that ended last, the last first: ComfyUI's history is kept in the order prompts end. */
  latestEnded(limit: number): Promise<TrackedPrompt[]>;
  /** Forgets ended prompts (all, or those named): they leave the history; their jobs stay. */
  forgetEnded(promptIds: string[] | "all"): Promise<void>;
  /**
   * Prompts not ended numbered after `after`, oldest first, at most `limit` (up to ACTIVE_PAGE_MAX),
   * only those in `state` when it is given; with the counts of all queued and running ones.
   */
  activePage(q: { after: number; limit: number; state?: "queued" | "running" }): Promise<ActivePage>;
  /**
   * Marks prompts ended whose jobs ended (canceled here, or their end notice went missing), at most
   * ACTIVE_PAGE_MAX at once; `settled`: how many were not ended yet.
   */
  settle(runIds: string[]): Promise<{ ok: true; settled: number } | { ok: false; code: "conflict"; message: string }>;
}

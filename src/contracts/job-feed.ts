/**
 * A job's news for the one object that follows it (a job's optional `subscriber`, an object of the
 * `JOB_SUBSCRIBERS` namespace): the job object hands over each event it writes, in order and best
 * effort (a subscriber that is down never holds up or fails the job). The subscriber renders the
 * news for its clients through this registry, which a dialect fills when the Worker's entry loads,
 * so neither the job object nor the subscriber imports a dialect.
 */
import type { BackendPreview, BackendProgress } from "../backends/types";
import type { JobEvent, JobSnapshot } from "../jobs/results";
import type { Dialect } from "../jobs/spec";

export interface JobNotice {
  events: JobEvent[];
  snapshot: JobSnapshot;
  /** The running attempt's latest figures (with the node it runs, where the backend says). */
  progress: BackendProgress | null;
}

/** A preview image the job's backend pushed while it samples: handed on, never stored. */
export type JobPreview = BackendPreview & { run_id: string };

export interface JobSubscriberRpc {
  jobNotice(notice: JobNotice): Promise<void>;
  jobPreview(preview: JobPreview): Promise<void>;
}

/** What a subscriber remembers of a job between notices. */
export interface FollowedJob {
  /** The id the dialect's clients know the job by. */
  id: string;
  /** The node last reported running, so a change of node is news. */
  node: string | null;
  /**
   * No other job its clients hear of runs: news that names no job, or that clients take for the one
   * job they expect to run (ComfyUI's progress and previews), goes only then.
   */
  alone: boolean;
  /** Its clients have had a progress of it: a job that runs beside another still sends its first, which clients take as its start. */
  heard: boolean;
}

/** A binary message: `prefix`, then the bytes of the job's stored output number `output`; `lead` goes just before it, and only with it. */
export interface BinaryFrame {
  prefix: Uint8Array;
  output: number;
  lead?: string;
}

export type FeedMessage = string | BinaryFrame;

/** What a notice makes for the job's clients. */
export interface RenderedNotice {
  messages: FeedMessage[];
  /**
   * The messages that close a job that succeeded, after `messages`. A client that expects the
   * server to run one job at a time takes them as the end of whichever job it waits for (ComfyUI's
   * `execution_success`), so the subscriber holds them while another job of that client runs.
   */
  closing: string[];
  /**
   * The messages that follow `closing`, naming their job (ComfyUI's `executing` null, which
   * clients match by prompt id): sent right after it, or at once while it is held.
   */
  after: string[];
  /** The node now running. */
  node: string | null;
  /** Whether its clients have now had a progress of it. */
  heard: boolean;
}

export interface FeedRenderer {
  notice(notice: JobNotice, followed: FollowedJob): RenderedNotice;
  /** A running job's preview as one message for its clients (sent only while it runs `alone`); undefined when they have no form for it. */
  preview?(preview: JobPreview): Uint8Array | undefined;
  /** The queue's state as the dialect's clients are told of it; `sid` names the client on connect. */
  status(queueRemaining: number, sid?: string): string;
}

const feedRenderers = new Map<Dialect, FeedRenderer>();

export const registerFeedRenderer = (dialect: Dialect, renderer: FeedRenderer): void => void feedRenderers.set(dialect, renderer);
export const feedRenderer = (dialect: Dialect): FeedRenderer | undefined => feedRenderers.get(dialect);

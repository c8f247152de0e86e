/** The canonical job as a Replicate prediction: the answer of every prediction route and the webhook body. */
import type { Env } from "../../env";
import type { JobSnapshot } from "../../jobs/results";
import { hasEnded } from "../../jobs/sync-wait";
import { outputUrls } from "../outputs";
import { streamUrl } from "./stream";

export type PredictionStatus = "starting" | "processing" | "succeeded" | "failed" | "canceled";
const STATUS = { queued: "starting", running: "processing", succeeded: "succeeded", failed: "failed", canceled: "canceled" } as const;

/** What intake keeps with the job, for rendering it back. */
export type PredictionData = {
  model: string;
  version: string;
  input: Record<string, unknown>;
  deployment?: string;
  /** The client's own webhook (a tenant's default_webhook is not shown). */
  webhook?: string;
  webhook_events_filter?: string[];
};

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/**
 * Live progress as a tqdm line, as Cog models log it: the Python client's `prediction.progress`
 * parses the last such line (`42%|████      | 12/30`).
 */
function progressLog(progress: Pick<NonNullable<JobSnapshot["job"]["progress"]>, "fraction" | "step" | "steps"> | null): string {
  if (!progress) return "";
  const filled = Math.round(progress.fraction * 10);
  return `${Math.round(progress.fraction * 100)}%|${"█".repeat(filled)}${" ".repeat(10 - filled)}| ${progress.step}/${progress.steps}\n`;
}

/** A succeeded generation's last line stays, at 100%, as Cog's log keeps it (a workflow's or an upscale's steps are not known). */
const finalProgress = ({ input }: JobSnapshot) => (input.spec.type === "workflow" || input.spec.type === "upscale" ? null : { fraction: 1, step: input.spec.steps, steps: input.spec.steps });

export const predictionUrl = (base: string, id: string): string => `${base}/v1/predictions/${id}`;

/**
 * `starting`: an answer to `Prefer: wait` (or a create) before the end says `starting`, which both
 * official clients read as "poll on"; any other status would be taken as final.
 */
export async function toPrediction(env: Env, snapshot: JobSnapshot, opts: { starting?: boolean } = {}): Promise<Record<string, unknown>> {
  const { job, input } = snapshot;
  const data = input.dialect_data;
  const ended = hasEnded(job);
  const status: PredictionStatus = opts.starting && !ended ? "starting" : STATUS[job.status];
  const get = predictionUrl(input.public_base_url, job.id);
  const metrics: Record<string, number> = {};
  if (ended && job.started_at) metrics.predict_time = job.metrics.run_ms / 1000;
  if (ended && job.completed_at) metrics.total_time = (Date.parse(job.completed_at) - Date.parse(job.created_at)) / 1000;
  const filter = data.webhook_events_filter;
  return {
    id: job.id,
    model: str(data.model) ?? "",
    version: str(data.version) ?? "",
    ...(str(data.deployment) ? { deployment: data.deployment } : {}),
    input: data.input && typeof data.input === "object" ? data.input : {},
    output: job.status === "succeeded" ? await outputUrls(env, snapshot) : null,
    logs: progressLog(job.status === "succeeded" ? finalProgress(snapshot) : job.progress),
    error: job.status === "failed" ? (job.error?.message ?? "prediction failed") : null,
    status,
    source: "api",
    created_at: job.created_at,
    started_at: job.started_at,
    completed_at: job.completed_at,
    data_removed: false,
    // `web`: the job inspector's page of it, as Replicate's links its website's.
    urls: { get, cancel: `${get}/cancel`, stream: await streamUrl(env, input.public_base_url, input.tenant, job.id), web: `${input.public_base_url}/dashboard#/jobs/${job.id}` },
    metrics,
    ...(str(data.webhook) ? { webhook: data.webhook } : {}),
    ...(Array.isArray(filter) ? { webhook_events_filter: filter } : {}),
  };
}

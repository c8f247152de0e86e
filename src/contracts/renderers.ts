/**
 * How a job's webhook bodies and S3 manifests take the shape of the dialect it came in through.
 * The job object (durable-objects/job/) renders through this registry and src/dialects/ fills it
 * when the Worker's entry loads, so the core never imports a dialect.
 */
import type { Env } from "../env";
import type { JobSnapshot } from "../jobs/results";
import type { StoredJobInput } from "../jobs/spec";
import type { WebhookEventType } from "../schemas/job";
import type { ManifestResult } from "../storage/s3-output";

type Dialect = StoredJobInput["dialect"];

/** A webhook event's body, or null when the dialect has no such event. */
export type WebhookRenderer = (env: Env, snapshot: JobSnapshot, type: WebhookEventType, nowMs: number) => Promise<unknown> | unknown;
/** The manifest written beside a job's outputs in S3, or null when the dialect writes none. */
export type ManifestRenderer = (input: StoredJobInput, result: ManifestResult) => string | null;

const webhookRenderers = new Map<Dialect, WebhookRenderer>();
const manifestRenderers = new Map<Dialect, ManifestRenderer>();

/** The events before a job's end, which most dialects' clients never hear of. */
export const beforeEnd = (type: WebhookEventType): boolean => type === "job.started" || type === "job.progress";

export const registerWebhookRenderer = (dialect: Dialect, render: WebhookRenderer): void => void webhookRenderers.set(dialect, render);
export const registerManifestRenderer = (dialect: Dialect, render: ManifestRenderer): void => void manifestRenderers.set(dialect, render);

export async function renderWebhookBody(env: Env, snapshot: JobSnapshot, type: WebhookEventType, nowMs: number): Promise<unknown> {
  const render = webhookRenderers.get(snapshot.input.dialect);
  // Every dialect registers one: a missing one is a wiring fault, not a job without webhooks.
  if (!render) throw new Error(`no webhook renderer is registered for the ${snapshot.input.dialect} dialect`);
  return render(env, snapshot, type, nowMs);
}

/** Whether the dialect writes a manifest at all: most do not, and their jobs need not read their full input for it. */
export const hasOutputManifest = (dialect: Dialect): boolean => manifestRenderers.has(dialect);
/** Null for a dialect that writes no manifest (all but SD-on-EKS). */
export const renderOutputManifest = (input: StoredJobInput, result: ManifestResult): string | null => manifestRenderers.get(input.dialect)?.(input, result) ?? null;

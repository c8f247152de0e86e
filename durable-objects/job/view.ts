/** The job as the routes and dialects see it: read from the ledger, with signed output links. */
import type { BackendProgress, WorkflowOutputs } from "../../src/backends/types";
import { config } from "../../src/config";
import type { Env } from "../../src/env";
import type { JobSnapshot } from "../../src/jobs/results";
import { jobParameters, type StoredJobInput, type Workflow } from "../../src/jobs/spec";
import { joinPassThrough } from "../../src/jobs/pass-through";
import { saveNodes } from "../../src/jobs/workflow-graph";
import { untilAborted, withDeadline } from "../../src/lib/deadline";
import type { Job, JobError, JobProgress } from "../../src/schemas/job";
import { signedOutputUrl } from "../../src/storage/links";
import { TERMINAL, type JobLedger } from "./ledger";
import { parseInput, type JobRow, type StoredOutput } from "./tables";

export const iso = (ms: number): string => new Date(ms).toISOString();

/** /v1's progress object: rounded, so that clock noise in the ETA is not a change. */
export const v1Progress = (p: BackendProgress): JobProgress => ({
  fraction: Math.round(p.fraction * 1000) / 1000,
  step: p.step,
  steps: p.steps,
  eta_s: p.eta_s === null ? null : Math.round(p.eta_s * 10) / 10,
  ...(p.node !== undefined ? { node: p.node } : {}),
});

/** The input with its large pass-through fields read back from R2 (see intake's storePassThrough). */
export async function fullInput(env: Env, input: StoredJobInput): Promise<StoredJobInput> {
  if (!input.pass_through_key) return input;
  const obj = await env.IMAGES.get(input.pass_through_key);
  if (!obj) return input;
  const moved = (await obj.json()) as { a1111_extra?: Record<string, unknown>; dialect_data?: Record<string, unknown>; workflow?: Workflow };
  const a1111_extra = input.spec.a1111_extra || moved.a1111_extra ? joinPassThrough(input.spec.a1111_extra, moved.a1111_extra) : undefined;
  const workflow = input.spec.workflow ?? moved.workflow;
  return { ...input, spec: { ...input.spec, a1111_extra, workflow }, dialect_data: joinPassThrough(input.dialect_data, moved.dialect_data) };
}

/** A graph kept in R2, read back to name an answer's files: past this, they go without their nodes. */
const GRAPH_READ_MS = 10_000;

/**
 * A workflow job's saving nodes as attempt `taskId` queued them, for an answer that names files
 * but not their nodes (worker-comfyui's): read only when asked (a graph kept in R2 is read back
 * then). A read that fails names none: the outputs are kept without their nodes, never the
 * finished generation failed (it would run again).
 */
export const workflowOutputs = (env: Env, input: StoredJobInput, taskId: string): WorkflowOutputs | undefined =>
  input.spec.type === "workflow"
    ? {
        saveNodes: async () => {
          const full = await withDeadline(GRAPH_READ_MS, (signal) => untilAborted(fullInput(env, input), signal)).catch(() => input);
          return saveNodes(full.spec.workflow, taskId);
        },
      }
    : undefined;

/**
 * The job as the routes show it. The large pass-through fields are read from R2 only for a
 * finished job's full rendering (`full`), never for /v1, a progress tick or a running job.
 */
export async function snapshot(env: Env, ledger: JobLedger, row: JobRow, opts: { full?: boolean } = {}): Promise<JobSnapshot> {
  const input = opts.full && TERMINAL.has(row.status) ? await fullInput(env, parseInput(row)) : parseInput(row);
  const outputs = JSON.parse(row.output) as StoredOutput[];
  const [secret] = config.urlSigningSecrets(env);
  const now = Date.now();
  const end = row.completed_at ?? now;
  // An ended job's links last until it is deleted (RETENTION_S after its end).
  const keptUntil = row.completed_at === null ? undefined : row.completed_at + config.retentionMs(env);
  const job: Job = {
    id: row.id,
    status: row.status,
    type: input.spec.type,
    track_id: input.track_id ?? null,
    created_at: iso(row.created_at),
    started_at: row.started_at === null ? null : iso(row.started_at),
    completed_at: row.completed_at === null ? null : iso(row.completed_at),
    backend: row.backend,
    model: input.spec.model ?? null,
    seed: input.spec.type === "upscale" || input.spec.type === "workflow" ? null : input.spec.seed,
    output: await Promise.all(
      outputs.map(async (o) => ({
        url: await signedOutputUrl(input.public_base_url, secret, o.key, now, keptUntil),
        content_type: o.content_type,
        width: o.width,
        height: o.height,
        seed: o.seed,
        ...(o.node_id !== undefined ? { node_id: o.node_id } : {}),
      })),
    ),
    error: row.error === null ? null : (JSON.parse(row.error) as JobError),
    metrics: {
      queue_ms: (row.started_at ?? end) - row.created_at,
      run_ms: row.started_at === null ? 0 : end - row.started_at,
    },
    progress: row.status === "running" ? ((p) => (p ? v1Progress(p.progress) : null))(ledger.storedProgress()) : null,
    parameters: jobParameters(input),
  };
  return { job, input, output_keys: outputs.map((o) => o.key) };
}

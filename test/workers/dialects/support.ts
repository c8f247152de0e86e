/** Jobs as the job object reports them, built by hand for the dialects' pure translation tests. */
import { exports } from "cloudflare:workers";
import type { Job, JobSnapshot } from "../../../src/jobs/results";
import { jobParameters, type Dialect, type GenerationSpec } from "../../../src/jobs/spec";

export const RUN_ID = "run_abcdefghijklmnopqrstuvwxyz";

export interface SnapshotOptions {
  status?: Job["status"];
  spec?: Partial<GenerationSpec>;
  dialect?: Dialect;
  dialect_data?: Record<string, unknown>;
  track_id?: string;
  error?: Job["error"];
  output_prefix?: string;
  s3_output?: JobSnapshot["input"]["s3_output"];
}

export function snapshot(o: SnapshotOptions = {}): JobSnapshot {
  const spec: GenerationSpec = { type: "txt2img", prompt: "apple", negative_prompt: "red", strength: 0.7, steps: 20, guidance_scale: 7, width: 512, height: 512, samples: 2, seed: 42, sampler: "DPM++ 2M Karras", ...o.spec };
  const status = o.status ?? "succeeded";
  const done = status === "succeeded";
  const prefix = o.output_prefix ?? `outputs/${RUN_ID}`;
  const keys = done ? Array.from({ length: spec.samples }, (_, i) => `${prefix}/image_${i}.png`) : [];
  const input: JobSnapshot["input"] = {
    id: RUN_ID,
    tenant: "acme",
    spec,
    pin_overrides_models: false,
    timeout_s: 1800,
    track_id: o.track_id,
    webhook_events: ["job.succeeded", "job.failed", "job.canceled"],
    dialect: o.dialect ?? "v1",
    dialect_data: o.dialect_data ?? {},
    output_prefix: prefix,
    s3_output: o.s3_output,
    public_base_url: "http://gateway.test",
  };
  const job: Job = {
    id: RUN_ID,
    status,
    type: spec.type,
    track_id: o.track_id ?? null,
    created_at: "2026-05-04T10:20:30.000Z",
    started_at: status === "queued" ? null : "2026-05-04T10:20:31.000Z",
    completed_at: ["succeeded", "failed", "canceled"].includes(status) ? "2026-05-04T10:20:33.500Z" : null,
    backend: status === "queued" ? null : "sim",
    model: spec.model ?? null,
    seed: spec.seed,
    output: keys.map((_, i) => ({ url: `http://gateway.test/v1/outputs/${i}.png`, content_type: "image/png", width: spec.width, height: spec.height, seed: spec.seed + i })),
    error: o.error ?? null,
    metrics: { queue_ms: 1000, run_ms: done ? 2500 : 0 },
    progress: null,
    parameters: jobParameters(input),
  };
  return { job, input, output_keys: keys };
}

/** Stands in for R2 reads: image n of a job is "img<n>". */
export const fakeImages = async (s: JobSnapshot) => s.output_keys.map((_, i) => `img${i}`);

/** A request to the Worker as a client sends it. */
export const call = (path: string, init: { method?: string; headers?: Record<string, string>; body?: unknown; signal?: AbortSignal } = {}) =>
  exports.default.fetch(
    new Request(`http://gateway.test${path}`, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      headers: { "content-type": "application/json", ...init.headers },
      body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
      signal: init.signal,
    }),
  );

export const basic = (user: string, password: string) => ({ authorization: `Basic ${btoa(`${user}:${password}`)}` });

/** A whole PNG that says it is `width` x `height`, as base64. */
export function tinyPng(width = 64, height = 64): string {
  // A whole 1x1 PNG, its IHDR saying the size asked for (the gateway reads the size from it and walks its chunks).
  const b = Uint8Array.from(atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="), (c) => c.charCodeAt(0));
  new DataView(b.buffer).setUint32(16, width);
  new DataView(b.buffer).setUint32(20, height);
  return btoa(String.fromCharCode(...b));
}

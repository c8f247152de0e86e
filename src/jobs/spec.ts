import { z } from "@hono/zod-openapi";
import { JobTypeSchema } from "../config/schema";
import { WebhookEventTypeSchema, type JobParametersSchema } from "../schemas/job";
import { S3OutputSchema } from "../storage/s3-output";

/** The dialects a job can come in through; each renders its own responses and webhook bodies. */
export const DialectSchema = z.enum(["v1", "a1111", "modelslab", "cerebrium", "runpod", "eks", "replicate", "comfyui"]);

/** One node of a ComfyUI API-format graph ("Save (API Format)"): inputs are values or `[node_id, output_index]` links. */
export const WorkflowNodeSchema = z.looseObject({ class_type: z.string(), inputs: z.record(z.string(), z.unknown()) });
export const WorkflowSchema = z.record(z.string(), WorkflowNodeSchema);

/** What a GPU backend is asked to generate, after intake normalized any dialect's request. */
export const GenerationSpecSchema = z.object({
  type: JobTypeSchema,
  prompt: z.string(),
  negative_prompt: z.string(),
  /** R2 key of the init image stored at intake. */
  init_image_key: z.string().optional(),
  strength: z.number(),
  steps: z.number().int(),
  guidance_scale: z.number(),
  width: z.number().int(),
  height: z.number().int(),
  samples: z.number().int(),
  seed: z.number().int(),
  sampler: z.string().optional(),
  model: z.string().optional(),
  /**
   * An upscale's own settings; its `width`/`height` above are the output size, worked out from the
   * source image at intake, and its source image is `init_image_key`.
   */
  upscale: z.object({ scale: z.number().optional(), upscaler: z.string().optional() }).optional(),
  /** A `workflow` job's graph, run as given (its seeds are never rewritten). */
  workflow: WorkflowSchema.optional(),
  /** A `workflow` job's named input images, stored at intake: handed to the backend under `name`. */
  input_images: z.array(z.object({ name: z.string(), key: z.string() })).optional(),
  /** Extra A1111 fields a dialect passes through untouched (alwayson_scripts, override_settings...). */
  a1111_extra: z.record(z.string(), z.unknown()).optional(),
  /** A `workflow` job's ComfyUI `extra_data` for the backend's `/prompt` (`extra_pnginfo`...): never Easel's own keys nor credentials. */
  extra_data: z.record(z.string(), z.unknown()).optional(),
});

/** Comfy.org's credentials for ComfyUI's API nodes, as ComfyUI reads them from `extra_data`. */
export const BackendCredentialsSchema = z.object({ api_key_comfy_org: z.string().optional(), auth_token_comfy_org: z.string().optional() });

/** Everything the job Durable Object needs to create a job. */
export const CreateJobSchema = z.object({
  id: z.string(),
  tenant: z.string(),
  spec: GenerationSpecSchema,
  backend: z.string().optional(),
  /** The backends intake found to have what the job loads (a workflow's checkpoints) and to take its request's size; unset: every backend that fits. */
  backends: z.array(z.string()).optional(),
  /** The pin comes from `ENDPOINTS`: the backend runs the job whatever its `models` list says. */
  pin_overrides_models: z.boolean().default(false),
  /** Seconds from submission until an unfinished job fails with `timeout`. */
  timeout_s: z.number().int().positive().default(1800),
  /**
   * Seconds from the job's start (queued → running) until an unfinished job fails with `timeout`:
   * a limit on running alone, queue time not counted (RunPod's `executionTimeout`). The earlier of
   * this and `timeout_s` ends the job.
   */
  run_timeout_s: z.number().int().positive().optional(),
  track_id: z.string().optional(),
  webhook: z.string().optional(),
  webhook_events: z.array(WebhookEventTypeSchema),
  dialect: DialectSchema,
  /** Dialect-specific values echoed back in that dialect's responses (EKS context, ModelsLab base64 flag...). */
  dialect_data: z.record(z.string(), z.unknown()).default({}),
  /** The `JOB_SUBSCRIBERS` object told of each of this job's events (best effort), e.g. a dialect's sockets. */
  subscriber: z.string().optional(),
  /** R2 key of `{a1111_extra, dialect_data}` when those were too large to keep with the job. */
  pass_through_key: z.string().optional(),
  /** Handed to the backend with the job, but kept apart from its input (durable-objects/job/credentials.ts) and dropped at its end. */
  credentials: BackendCredentialsSchema.optional(),
  /** Outputs are also written to this S3 bucket, with a manifest, in SD-on-EKS's layout. */
  s3_output: S3OutputSchema.optional(),
  /** R2 prefix under which outputs are written as image_<n>.png. */
  output_prefix: z.string(),
  public_base_url: z.string(),
  /** When intake admitted the job, in ms: the tenant's index was given the same instant. */
  created_at: z.number().int().optional(),
});

export type Dialect = z.infer<typeof DialectSchema>;
export type GenerationSpec = z.infer<typeof GenerationSpecSchema>;
export type Workflow = z.infer<typeof WorkflowSchema>;
export type BackendCredentials = z.infer<typeof BackendCredentialsSchema>;
export type CreateJob = z.input<typeof CreateJobSchema>;
/** What the job keeps of its creation: everything but the credentials, which never join it. */
export type StoredJobInput = Omit<z.output<typeof CreateJobSchema>, "credentials">;

export const DEFAULTS = { steps: 30, guidance_scale: 7.5, strength: 0.7, width: 512, height: 512, samples: 1 } as const;
export const DEFAULT_WEBHOOK_EVENTS = ["job.succeeded", "job.failed", "job.canceled"] as const;

/** What the job was asked to do, as `/v1` shows it (`parameters`): the stored input, defaults filled in. */
export const jobParameters = (input: StoredJobInput): z.infer<typeof JobParametersSchema> => ({
  prompt: input.spec.prompt,
  negative_prompt: input.spec.negative_prompt,
  width: input.spec.width,
  height: input.spec.height,
  steps: input.spec.steps,
  guidance_scale: input.spec.guidance_scale,
  samples: input.spec.samples,
  sampler: input.spec.sampler ?? null,
  strength: input.spec.type === "img2img" ? input.spec.strength : null,
  scale: input.spec.upscale?.scale ?? null,
  upscaler: input.spec.upscale?.upscaler ?? null,
  webhook: input.webhook ?? null,
  webhook_events: input.webhook_events,
  timeout_s: input.timeout_s,
  run_timeout_s: input.run_timeout_s ?? null,
});

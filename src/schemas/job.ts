import { z } from "@hono/zod-openapi";
import { JobTypeSchema } from "../config/schema";

export const TERMINAL_STATUSES = ["succeeded", "failed", "canceled"] as const;
export const JobStatusSchema = z.enum(["queued", "running", ...TERMINAL_STATUSES]);
/**
 * `job.progress` (live figures, at most 2 a second, each tried once: the next one supersedes it) is
 * asked for like the start; the terminal events are the default.
 */
export const WebhookEventTypeSchema = z.enum(["job.started", "job.progress", "job.succeeded", "job.failed", "job.canceled"]);

/** Generated images are at most this size a side; upscaled ones at most `MAX_UPSCALED_SIDE`. */
export const MAX_GENERATED_SIDE = 2048;
export const MAX_UPSCALED_SIDE = 4096;
export const DEFAULT_TIMEOUT_S = 1800;
/** The longest a job may live: its timeout counts from its submission. */
export const MAX_TIMEOUT_S = 3600;
/** The shortest `timeout_s` a job may be given. */
export const MIN_TIMEOUT_S = 10;
/** A workflow's input images: a few per graph (each is also bounded by the body's 15 MiB). */
export const MAX_WORKFLOW_IMAGES = 16;

const dims = (name: string) =>
  z.number().int().min(64).max(MAX_UPSCALED_SIDE).refine((n) => n % 8 === 0, `${name} must be a multiple of 8`);

/** The fields of a job request, each with the contract's limits (the type-dependent ones in `jobRules`). */
const JobFieldsSchema = z.object({
    type: JobTypeSchema,
    prompt: z.string().min(1).max(4000).optional(),
    negative_prompt: z.string().max(4000).optional(),
    init_image: z.string().min(1).optional().openapi({ description: "https URL, data URI or raw base64 of a PNG, JPEG or WebP (≤ 10 MiB)" }),
    image: z.string().min(1).optional().openapi({ description: "upscale: the image to enlarge, in any form init_image takes" }),
    scale: z.number().min(1).max(4).optional().openapi({ description: "upscale: factor (may be fractional); or width and height" }),
    upscaler: z.string().min(1).max(100).optional().openapi({ description: "upscale: the backend's upscaler name (A1111's upscaler_1)" }),
    strength: z.number().min(0).max(1).optional(),
    steps: z.number().int().min(1).max(150).optional(),
    guidance_scale: z.number().min(1).max(30).optional(),
    width: dims("width").optional(),
    height: dims("height").optional(),
    samples: z.number().int().min(1).max(4).optional(),
    seed: z.number().int().min(0).max(4294967295).optional(),
    sampler: z.string().min(1).max(100).optional(),
    model: z.string().min(1).max(256).optional(),
    backend: z.string().min(1).max(100).optional(),
    webhook: z.string().min(1).max(2048).optional(),
    webhook_events: z.array(WebhookEventTypeSchema).min(1).optional(),
    track_id: z.string().max(256).optional(),
    timeout_s: z.number().int().min(MIN_TIMEOUT_S).max(MAX_TIMEOUT_S).optional().openapi({ description: `seconds from submission until an unfinished job fails with timeout (default ${DEFAULT_TIMEOUT_S})` }),
    // Checked node by node at intake (src/jobs/workflow-graph.ts), for every API that submits graphs.
    workflow: z.record(z.string(), z.unknown()).optional().openapi({ description: "workflow: a ComfyUI API-format graph, as \"Save (API Format)\" writes it: node id → {class_type, inputs}" }),
    images: z
      .array(z.object({ name: z.string(), image: z.string().min(1) }).strict())
      .min(1)
      .max(MAX_WORKFLOW_IMAGES)
      .optional()
      .openapi({ description: "workflow: input images, each handed to the backend under `name` (a plain file name a LoadImage node names), in any form init_image takes" }),
  });

/** What a `workflow` job is made of: a graph and its inputs, never a generation's parameters. */
const GENERATION_FIELDS = ["prompt", "negative_prompt", "init_image", "image", "scale", "upscaler", "strength", "steps", "guidance_scale", "width", "height", "samples", "seed", "sampler", "model"] as const;

type RuleInput = { type: z.infer<typeof JobTypeSchema>; prompt?: string; width?: number; height?: number; scale?: number; samples?: number };

/**
 * The limits that depend on the job type, shared by `/v1` and every dialect's translated request:
 * a generation needs a prompt and stays within 2048 px; an upscale is one image, by `scale` or to
 * `width` and `height`.
 */
export function jobRules(req: RuleInput, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
  // A graph carries its own parameters; the fields of a generation are refused where an API has them (`workflowRules`).
  if (req.type === "workflow") return;
  if (req.type === "upscale") {
    if (req.scale !== undefined && (req.width !== undefined || req.height !== undefined)) issue("scale", "give scale, or width and height, not both");
    if (req.scale === undefined && (req.width === undefined) !== (req.height === undefined)) issue(req.width === undefined ? "width" : "height", "width and height go together");
    if (req.scale === undefined && req.width === undefined && req.height === undefined) issue("scale", "required when type is upscale (or width and height)");
    if (req.samples !== undefined && req.samples !== 1) issue("samples", "an upscale makes one image");
    return;
  }
  // An empty prompt is already refused by its own limits: one issue per field.
  if (req.prompt === undefined) issue("prompt", `required when type is ${req.type}`);
  for (const side of ["width", "height"] as const) {
    const v = req[side];
    if (v !== undefined && v > MAX_GENERATED_SIDE) issue(side, `at most ${MAX_GENERATED_SIDE} for ${req.type}`);
  }
  if (req.scale !== undefined) issue("scale", "only for type upscale");
}

const LIMITED_FIELDS = {
  type: true,
  prompt: true,
  negative_prompt: true,
  strength: true,
  steps: true,
  guidance_scale: true,
  width: true,
  height: true,
  scale: true,
  upscaler: true,
  samples: true,
  seed: true,
  track_id: true,
  timeout_s: true,
} as const;

/** A limit on running alone (not on `/v1`: a dialect's, RunPod's `executionTimeout`), within the longest a job may live. */
const RUN_LIMIT = { run_timeout_s: z.number().int().min(1).max(MAX_TIMEOUT_S).optional() };

/** The limits every dialect's request is held to once translated (the core checks them, once). */
export const GenerationLimitsSchema = JobFieldsSchema.pick(LIMITED_FIELDS).extend(RUN_LIMIT).superRefine(jobRules);

/** The same, an empty prompt allowed: A1111 generates from one (its own default, `""`). */
export const EmptyPromptLimitsSchema = JobFieldsSchema.pick(LIMITED_FIELDS)
  .extend({ prompt: z.string().max(4000).optional(), ...RUN_LIMIT })
  .superRefine(jobRules);

/**
 * /v1 is strict: a workflow job is its graph and images, so a generation field beside it is a 422
 * (it would be silently ignored otherwise), and a graph or images on another type likewise.
 */
function workflowRules(req: z.infer<typeof JobFieldsSchema>, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
  if (req.type !== "workflow") {
    for (const f of ["workflow", "images"] as const) if (req[f] !== undefined) issue(f, "only for type workflow");
    return;
  }
  if (req.workflow === undefined) issue("workflow", "required when type is workflow");
  for (const f of GENERATION_FIELDS) if (req[f] !== undefined) issue(f, "not for type workflow: the graph's nodes carry its parameters");
}

/** `POST /v1/jobs`: strict, a string where a number belongs is a 422. */
export const JobRequestSchema = JobFieldsSchema.strict()
  .superRefine((req, ctx) => {
    jobRules(req, ctx);
    if (req.type === "img2img" && !req.init_image) {
      ctx.addIssue({ code: "custom", path: ["init_image"], message: "required when type is img2img" });
    }
    if (req.type === "upscale" && !req.image) ctx.addIssue({ code: "custom", path: ["image"], message: "required when type is upscale" });
    if (req.type !== "upscale" && req.type !== "workflow") for (const f of ["image", "upscaler"] as const) if (req[f] !== undefined) ctx.addIssue({ code: "custom", path: [f], message: "only for type upscale" });
    workflowRules(req, ctx);
  })
  .openapi("JobRequest");

export const OutputSchema = z.object({
  url: z.string(),
  content_type: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  /** Null for an upscale, which has no seed, and for a workflow, whose seeds are its graph's. */
  seed: z.number().int().nullable(),
  node_id: z.string().optional().openapi({ description: "workflow: the id of the graph node that saved this image" }),
});

export const JobErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  node: z.object({ id: z.string(), type: z.string().nullable() }).optional().openapi({ description: "workflow: the graph node that failed (its id and class_type), when the backend says" }),
});

export const JobProgressSchema = z
  .object({
    fraction: z.number().min(0).max(1),
    step: z.number().int(),
    steps: z.number().int(),
    eta_s: z.number().nullable(),
    node: z.string().optional().openapi({ description: "workflow: the graph node being run, when the backend says" }),
  })
  .openapi("JobProgress", { description: "Live figures while the job runs on a backend that reports them; null before and after" });

/** What the job was asked to do, as the gateway took it (defaults filled in): the inspector shows it. */
export const JobParametersSchema = z
  .object({
    prompt: z.string(),
    negative_prompt: z.string(),
    width: z.number().int(),
    height: z.number().int(),
    steps: z.number().int(),
    guidance_scale: z.number(),
    samples: z.number().int(),
    sampler: z.string().nullable(),
    /** img2img only. */
    strength: z.number().nullable(),
    /** upscale only. */
    scale: z.number().nullable(),
    upscaler: z.string().nullable(),
    webhook: z.string().nullable(),
    webhook_events: z.array(z.string()),
    timeout_s: z.number().int(),
    /** Seconds the job may run once started, queue time not counted (a dialect's run limit: RunPod's executionTimeout); null: only timeout_s. */
    run_timeout_s: z.number().int().nullable(),
  })
  .openapi("JobParameters");

export const JobSchema = z
  .object({
    id: z.string(),
    status: JobStatusSchema,
    type: JobTypeSchema,
    track_id: z.string().nullable(),
    created_at: z.string(),
    started_at: z.string().nullable(),
    completed_at: z.string().nullable(),
    backend: z.string().nullable(),
    model: z.string().nullable(),
    seed: z.number().int().nullable(),
    output: z.array(OutputSchema),
    error: JobErrorSchema.nullable(),
    metrics: z.object({ queue_ms: z.number().int(), run_ms: z.number().int() }),
    progress: JobProgressSchema.nullable(),
    parameters: JobParametersSchema,
  })
  .openapi("Job");

export const JobListSchema = z.object({ data: z.array(JobSchema), next_cursor: z.string().nullable() }).openapi("JobList");

/** Whether `yyyy-mm-dd` names a day of the calendar. */
const realDay = (ymd: string): boolean => {
  const [y = 0, m = 0, d = 0] = ymd.split("-").map(Number);
  const day = new Date(Date.UTC(y, m - 1, d));
  return day.getUTCFullYear() === y && day.getUTCMonth() === m - 1 && day.getUTCDate() === d;
};

const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/, "expected an ISO-8601 date or date-time")
  // Date.parse rolls an impossible day over (2020-02-30 is March 1st): the day must be the calendar's.
  .refine((v) => !Number.isNaN(Date.parse(v)) && realDay(v.slice(0, 10)), "not a real date");

/** `GET /v1/jobs`: filters combine; created_after ≤ created_at < created_before. */
export const JobListQuerySchema = z.object({
  status: JobStatusSchema.optional(),
  type: JobTypeSchema.optional(),
  track_id: z.string().max(256).optional(),
  created_after: isoDate.optional().openapi({ example: "2026-01-01T00:00:00Z" }),
  created_before: isoDate.optional(),
  // Digits only: Number() would also read "0x10", "1e1" or " 20 " as a limit.
  limit: z.string().regex(/^\d+$/, "expected a whole number from 1 to 100").default("20")
    .transform(Number)
    .pipe(z.number().int().min(1).max(100))
    .openapi({ type: "integer", minimum: 1, maximum: 100, default: 20 }),
  cursor: z.string().min(1).max(200).optional().openapi({ description: "next_cursor of the previous page" }),
});

export const EventSchema = z.object({ seq: z.number().int(), type: z.string(), at: z.string(), data: z.record(z.string(), z.unknown()) });
export const EventListSchema = z.object({ data: z.array(EventSchema) }).openapi("EventList");

export const DeliverySchema = z.object({
  event_id: z.string(),
  type: z.string(),
  attempt: z.number().int(),
  url: z.string(),
  started_at: z.string(),
  status_code: z.number().int().nullable(),
  error: z.string().nullable(),
  duration_ms: z.number().int(),
  response_body: z.string().nullable(),
  next_attempt_at: z.string().nullable(),
});
export const DeliveryListSchema = z.object({ data: z.array(DeliverySchema) }).openapi("DeliveryList");

export type JobRequest = z.infer<typeof JobRequestSchema>;
export type Job = z.infer<typeof JobSchema>;
export type JobStatus = z.infer<typeof JobStatusSchema>;
export type JobOutput = z.infer<typeof OutputSchema>;
export type JobError = z.infer<typeof JobErrorSchema>;
export type JobProgress = z.infer<typeof JobProgressSchema>;
export type JobEvent = z.infer<typeof EventSchema>;
export type Delivery = z.infer<typeof DeliverySchema>;
export type WebhookEventType = z.infer<typeof WebhookEventTypeSchema>;

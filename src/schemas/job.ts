import { z } from "@hono/zod-openapi";
import { JobTypeSchema } from "../config/schema";

export const TERMINAL_STATUSES = ["succeeded", "failed", "canceled"] as const;
export const JobStatusSchema = z.enum(["queued", "running", ...TERMINAL_STATUSES]);
export const WebhookEventTypeSchema = z.enum(["job.started", "job.succeeded", "job.failed", "job.canceled"]);

const dims = (name: string) =>
  z.number().int().min(64).max(2048).refine((n) => n % 8 === 0, `${name} must be a multiple of 8`);

/** The fields of a job request, each with the contract's limits. */
const JobFieldsSchema = z.object({
    type: JobTypeSchema,
    prompt: z.string().min(1).max(4000),
    negative_prompt: z.string().max(4000).optional(),
    init_image: z.string().min(1).optional().openapi({ description: "https URL, data URI or raw base64 of a PNG, JPEG or WebP (≤ 10 MiB)" }),
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
  });

/** The limits every dialect's request is held to once translated (the core checks them, once). */
export const GenerationLimitsSchema = JobFieldsSchema.pick({
  prompt: true,
  negative_prompt: true,
  strength: true,
  steps: true,
  guidance_scale: true,
  width: true,
  height: true,
  samples: true,
  seed: true,
  track_id: true,
});

/** `POST /v1/jobs`: strict, a string where a number belongs is a 422. */
export const JobRequestSchema = JobFieldsSchema.strict()
  .superRefine((req, ctx) => {
    if (req.type === "img2img" && !req.init_image) {
      ctx.addIssue({ code: "custom", path: ["init_image"], message: "required when type is img2img" });
    }
  })
  .openapi("JobRequest");

export const OutputSchema = z.object({
  url: z.string(),
  content_type: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  seed: z.number().int(),
});

export const JobErrorSchema = z.object({ code: z.string(), message: z.string() });

export const JobProgressSchema = z
  .object({ fraction: z.number().min(0).max(1), step: z.number().int(), steps: z.number().int(), eta_s: z.number().nullable() })
  .openapi("JobProgress", { description: "Live figures while the job runs on a backend that reports them; null before and after" });

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
    seed: z.number().int(),
    output: z.array(OutputSchema),
    error: JobErrorSchema.nullable(),
    metrics: z.object({ queue_ms: z.number().int(), run_ms: z.number().int() }),
    progress: JobProgressSchema.nullable(),
  })
  .openapi("Job");

export const JobListSchema = z.object({ data: z.array(JobSchema), next_cursor: z.string().nullable() }).openapi("JobList");

const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/, "expected an ISO-8601 date or date-time")
  .refine((v) => !Number.isNaN(Date.parse(v)), "not a real date");

/** `GET /v1/jobs`: filters combine; created_after ≤ created_at < created_before. */
export const JobListQuerySchema = z.object({
  status: JobStatusSchema.optional(),
  type: JobTypeSchema.optional(),
  track_id: z.string().max(256).optional(),
  created_after: isoDate.optional().openapi({ example: "2026-01-01T00:00:00Z" }),
  created_before: isoDate.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
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

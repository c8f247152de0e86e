/**
 * Cerebrium's `sd-img-2-img` predict (seed 004): synchronous without `webhook_endpoint`, the run
 * id at once and the full result POSTed to the webhook with it.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createApp, errorsAs } from "../app";
import type { EaselError } from "../errors";
import { submitJob, type IntakeRequest } from "../jobs/intake";
import type { JobSnapshot } from "../jobs/results";
import { tenantAuth } from "../middleware/auth";
import { outputsBase64, publicBase, rawOrBearerKey, waitForEnd, type ImagesAsBase64 } from "./shared";

export const CerebriumRequestSchema = z
  .looseObject({
    prompt: z.string(),
    image: z.string().optional(),
    file_url: z.string().optional(),
    num_inference_steps: z.number().int().optional(),
    guidance_scale: z.number().optional(),
    num_images_per_prompt: z.number().int().optional(),
    negative_prompt: z.string().optional(),
    seed: z.number().int().optional(),
    webhook_endpoint: z.string().optional(),
  })
  .openapi("CerebriumRequest");
export type CerebriumRequest = z.infer<typeof CerebriumRequestSchema>;

export const CEREBRIUM_FIELDS = {
  steps: "num_inference_steps",
  samples: "num_images_per_prompt",
  webhook: "webhook_endpoint",
} as const;

/** The model is img2img; `file_url` stands in for `image` (the core fetches it, SSRF-guarded). */
export function fromCerebrium(body: CerebriumRequest): IntakeRequest {
  return {
    type: "img2img",
    prompt: body.prompt,
    negative_prompt: body.negative_prompt,
    init_image: body.image || body.file_url,
    steps: body.num_inference_steps ?? 50,
    guidance_scale: body.guidance_scale ?? 7.5,
    samples: body.num_images_per_prompt ?? 1,
    seed: body.seed,
    webhook: body.webhook_endpoint,
    webhook_events: ["job.succeeded", "job.failed", "job.canceled"],
  };
}

/** `{run_id, message, result}`: the base64 list on success, null otherwise. */
export async function toCerebrium(snapshot: JobSnapshot, images: ImagesAsBase64): Promise<Record<string, unknown>> {
  const { job } = snapshot;
  if (job.status === "succeeded") return { run_id: job.id, message: "Successfully generated image", result: await images(snapshot) };
  return { run_id: job.id, message: job.error?.message ?? `The run was ${job.status}`, result: null };
}

export const cerebriumError = (err: EaselError) => ({ run_id: null, message: err.message, ...(err.details ? { errors: err.details } : {}) });

export const cerebrium = createApp();
cerebrium.use("/cerebrium/*", tenantAuth({ key: rawOrBearerKey }));
cerebrium.onError(errorsAs(cerebriumError));

cerebrium.openapi(
  createRoute({
    method: "post",
    path: "/cerebrium/predict",
    tags: ["Cerebrium"],
    summary: "Cerebrium sd-img-2-img predict",
    request: { body: { content: { "application/json": { schema: CerebriumRequestSchema } }, required: true } },
    responses: { 200: { description: "`{run_id, message, result}`, or `{run_id, message}` with a webhook_endpoint" } },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const tenant = c.var.tenant;
    const { snapshot } = await submitJob(c.env, fromCerebrium(body), {
      tenant,
      dialect: "cerebrium",
      publicBaseUrl: publicBase(c),
      fields: { ...CEREBRIUM_FIELDS, init_image: body.file_url && !body.image ? "file_url" : "image" },
    });
    c.header("x-easel-run-id", snapshot.job.id);
    if (body.webhook_endpoint) return c.json({ run_id: snapshot.job.id, message: "Request accepted; the result will be sent to webhook_endpoint" }, 200);
    const done = await waitForEnd(c.env, snapshot.job.id, tenant, c.req.raw.signal);
    return c.json(await toCerebrium(done, (s) => outputsBase64(c.env, s)), done.job.status === "succeeded" ? 200 : 502);
  },
);

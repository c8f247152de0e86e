/** Cerebrium's `sd-img-2-img` predict body to and from the canonical job (seed 004). */
import { z } from "@hono/zod-openapi";
import type { EaselError } from "../../errors";
import type { IntakeOptions, IntakeRequest } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import type { ImagesAsBase64 } from "../outputs";

// Every field but the prompt is optional on the model's page; `null` (Python's None, as a client's
// dict carries a parameter left unset) means the same as leaving it out.
export const CerebriumRequestSchema = z
  .looseObject({
    prompt: z.string(),
    image: z.string().nullish(),
    file_url: z.string().nullish(),
    num_inference_steps: z.number().int().nullish(),
    guidance_scale: z.number().nullish(),
    num_images_per_prompt: z.number().int().nullish(),
    negative_prompt: z.string().nullish(),
    seed: z.number().int().nullish(),
    webhook_endpoint: z.string().nullish(),
  })
  .openapi("CerebriumRequest");
export type CerebriumRequest = z.infer<typeof CerebriumRequestSchema>;

/** Cerebrium's names for the canonical fields; the image is `image`, or `file_url` when that is what came. */
export const cerebriumFields = (body: CerebriumRequest) =>
  ({
    steps: "num_inference_steps",
    samples: "num_images_per_prompt",
    webhook: "webhook_endpoint",
    init_image: body.file_url && !body.image ? "file_url" : "image",
  }) as const satisfies IntakeOptions["fields"];

/** The model is img2img with the defaults its page gives; `file_url` stands in for `image`. */
export function fromCerebrium(body: CerebriumRequest): IntakeRequest {
  return {
    type: "img2img",
    prompt: body.prompt,
    negative_prompt: body.negative_prompt ?? undefined,
    init_image: body.image || body.file_url || undefined,
    steps: body.num_inference_steps ?? 50,
    guidance_scale: body.guidance_scale ?? 7.5,
    samples: body.num_images_per_prompt ?? 1,
    seed: body.seed ?? undefined,
    webhook: body.webhook_endpoint ?? undefined,
    // Cerebrium calls its webhook once, with the result.
    webhook_events: ["job.succeeded", "job.failed", "job.canceled"],
  };
}

/** The answer to a predict that was given a webhook_endpoint: the result follows there. */
export const cerebriumAccepted = (snapshot: JobSnapshot) => ({ run_id: snapshot.job.id, message: "Request accepted; the result will be sent to webhook_endpoint" });

/** `{run_id, message, result}`: the base64 list on success, null otherwise. Also the webhook body. */
export async function toCerebrium(snapshot: JobSnapshot, images: ImagesAsBase64): Promise<Record<string, unknown>> {
  const { job } = snapshot;
  if (job.status === "succeeded") return { run_id: job.id, message: "Successfully generated image", result: await images(snapshot) };
  return { run_id: job.id, message: job.error?.message ?? `The run was ${job.status}`, result: null };
}

export const cerebriumError = (err: EaselError) => ({ run_id: null, message: err.message, ...(err.details ? { errors: err.details } : {}) });

/** Cerebrium's `sd-img-2-img` predict body to and from the canonical job (seed 004). */
import { z } from "@hono/zod-openapi";
import type { EaselError } from "../../errors";
import type { IntakeOptions, IntakeRequest } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import { pyFloat, pyInt } from "../coerce";
import type { ImagesAsBase64 } from "../outputs";

// The prebuilt's `Item` (CerebriumAI/cerebrium-prebuilts sd-img-2-img/main.py), a pydantic model:
// every field but the prompt has a default, numbers sent as strings are read as it reads them, and
// `null` (Python's None, as a client's dict carries a parameter left unset) means the same as leaving it out.
const int = () => pyInt().nullish();
export const CerebriumRequestSchema = z
  .looseObject({
    prompt: z.string(),
    image: z.string().nullish(),
    file_url: z.string().nullish(),
    num_inference_steps: int(),
    guidance_scale: pyFloat().nullish(),
    num_images_per_prompt: int(),
    negative_prompt: z.string().nullish(),
    seed: int(),
    // The box the init image is fitted in (`ImageOps.contain`), not the output's exact size.
    width: pyInt().pipe(z.number().min(1)).nullish(),
    height: pyInt().pipe(z.number().min(1)).nullish(),
    webhook_endpoint: z.string().nullish(),
  })
  .openapi("CerebriumRequest");
export type CerebriumRequest = z.infer<typeof CerebriumRequestSchema>;

/** `main.py` reads `file_url` first: when both come, `image` is not used. */
const usesFileUrl = (body: CerebriumRequest) => Boolean(body.file_url);

/** Cerebrium's names for the canonical fields; the image is `file_url` when that is what is used. */
export const cerebriumFields = (body: CerebriumRequest) =>
  ({
    steps: "num_inference_steps",
    samples: "num_images_per_prompt",
    webhook: "webhook_endpoint",
    init_image: usesFileUrl(body) ? "file_url" : "image",
  }) as const satisfies IntakeOptions["fields"];

/**
 * The model is img2img with the defaults of its `Item`: 50 steps, guidance 7.5, one image, seed 0
 * (its generator is always seeded, so a request without one repeats), and the init image fitted in
 * a 512 x 512 box, its aspect kept.
 */
export function fromCerebrium(body: CerebriumRequest): IntakeRequest {
  return {
    type: "img2img",
    prompt: body.prompt,
    negative_prompt: body.negative_prompt ?? undefined,
    init_image: (usesFileUrl(body) ? body.file_url : body.image) || undefined,
    steps: body.num_inference_steps ?? 50,
    guidance_scale: body.guidance_scale ?? 7.5,
    samples: body.num_images_per_prompt ?? 1,
    seed: body.seed ?? 0,
    size_from_image: { rule: "contain", width: body.width ?? 512, height: body.height ?? 512 },
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

/** "Stable Diffusion on EKS" tasks (seed 001) to and from the canonical job. */
import { z } from "@hono/zod-openapi";
import { config } from "../../config";
import type { Env } from "../../env";
import type { EaselError } from "../../errors";
import type { IntakeRequest } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import { A1111RequestSchema, fromA1111 } from "../a1111/translate";
import { outputUrls } from "../outputs";

/** R2 roots the core writes every other job under: no task may put its outputs there. */
const RESERVED_ROOTS = new Set(["inputs", "outputs"]);
/** `context` travels with the job and back in the webhook; it is a tag, not a payload. */
const MAX_CONTEXT_CHARS = 16 * 1024;

const Prefix = z
  .string()
  .max(512)
  .regex(/^[A-Za-z0-9._\-/]+$/, "letters, digits, . _ - / only")
  .transform((p) => p.split("/").filter(Boolean).join("/"))
  .refine((p) => p !== "", "must name a directory")
  .refine((p) => !RESERVED_ROOTS.has(p.split("/")[0] ?? ""), "inputs/ and outputs/ are reserved");

export const EksTaskSchema = z
  .object({
    task: z.object({
      metadata: z.looseObject({
        id: z.string().min(1).max(256).regex(/^[A-Za-z0-9._:-]+$/, "letters, digits, . _ : - only"),
        runtime: z.string().min(1).max(256),
        tasktype: z.enum(["text-to-image", "image-to-image"]),
        prefix: Prefix,
        context: z.unknown().refine((v) => (JSON.stringify(v) ?? "").length <= MAX_CONTEXT_CHARS, `at most ${MAX_CONTEXT_CHARS} characters of JSON`).optional(),
        webhook: z.string().optional(),
      }),
      content: A1111RequestSchema,
    }),
  })
  .openapi("EksTask");
export type EksTask = z.infer<typeof EksTaskSchema>["task"];

export const eksType = (task: EksTask) => (task.metadata.tasktype === "image-to-image" ? "img2img" : "txt2img");

/** Where the task's images go, `<prefix>/<id>`: they land there as image_0.png, image_1.png... */
export const outputPrefix = (task: EksTask) => `${task.metadata.prefix}/${task.metadata.id}`;

export const outputLocation = (env: Env, prefix: string) => `r2://${config.bucketName(env)}/${prefix}`;

/** The content is an A1111 payload; its first init image comes as bytes when it was an s3:// link. */
export function fromEks(task: EksTask, initImage: string | Uint8Array | undefined, model: string | undefined): IntakeRequest {
  const type = eksType(task);
  return { ...fromA1111(type, task.content, model), init_image: type === "img2img" ? initImage : undefined, webhook: task.metadata.webhook };
}

/** Kept with the job for its answers and its notification. */
export const eksData = ({ metadata }: EksTask) => ({ id_task: metadata.id, runtime: metadata.runtime, context: metadata.context ?? "" });

export const toEksSubmitted = (env: Env, task: EksTask) => ({ id_task: task.metadata.id, runtime: task.metadata.runtime, output_location: outputLocation(env, outputPrefix(task)) });

/** `GET /eks/v1/tasks/{id_task}`: the task's state and a signed download link per image. */
export async function toEksTask(env: Env, snapshot: JobSnapshot) {
  const { job, input } = snapshot;
  return {
    id_task: input.dialect_data.id_task,
    runtime: input.dialect_data.runtime,
    status: job.status,
    output_location: outputLocation(env, input.output_prefix),
    images: job.status === "succeeded" ? await outputUrls(env, snapshot) : [],
    error: job.error,
    run_id: job.id,
  };
}

/** SD-on-EKS's notification, as its SNS topic sends it: `{id, result, image_url, output_url, context}`. */
export async function toEksNotification(env: Env, snapshot: JobSnapshot): Promise<Record<string, unknown>> {
  const { job, input } = snapshot;
  return {
    id: input.dialect_data.id_task,
    result: job.status === "succeeded",
    image_url: job.status === "succeeded" ? await outputUrls(env, snapshot) : [],
    output_url: outputLocation(env, input.output_prefix),
    context: input.dialect_data.context ?? "",
  };
}

export const eksError = (err: EaselError) => ({ message: err.message, ...(err.details ? { errors: err.details } : {}) });

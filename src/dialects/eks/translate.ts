/**
 * "Stable Diffusion on EKS" tasks (seed 001) to and from the canonical job: v1alpha2's
 * `{task: {metadata, content}}` and v1alpha1's flat A1111 body with routing fields in
 * `alwayson_scripts`, both read into one task shape; content handled as its queue agent handles it.
 */
import { z } from "@hono/zod-openapi";
import { config } from "../../config";
import type { Env } from "../../env";
import { EaselError, invalid } from "../../errors";
import type { IntakeOptions, IntakeRequest } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import type { StoredJobInput } from "../../jobs/spec";
import { keyPathProblem, keySegmentProblem } from "../../lib/storage-key";
import { s3ImageKey, s3ManifestKey, s3Url, type ManifestResult } from "../../storage/s3-output";
import { ExtrasSingleImageSchema, extrasFields, fromExtras } from "../a1111/extras";
import { A1111RequestSchema, a1111Fields, a1111Parameters, fromA1111 } from "../a1111/translate";
import { outputUrls, signedLink } from "../outputs";
import { chosenOutputPrefix, manifestKey } from "../../storage/images";

/** `context` travels with the job and back in the webhook; it is a tag, not a payload. */
const MAX_CONTEXT_CHARS = 16 * 1024;

/** A client string that becomes part of the task's storage keys: the segment check, then the characters allowed. */
const keyString = (problem: (v: string) => string | undefined, allowed: RegExp, what: string) =>
  z.string().superRefine((v, ctx) => {
    const found = problem(v) ?? (allowed.test(v) ? undefined : what);
    if (found) ctx.addIssue({ code: "custom", message: found });
  });

const TaskId = keyString(keySegmentProblem, /^[A-Za-z0-9._:-]{1,256}$/, "1 to 256 letters, digits, . _ : - only");
const TaskType = z.enum(["text-to-image", "image-to-image", "extra-single-image", "extra-batch-image", "pipeline"]);
type TaskType = z.infer<typeof TaskType>;

/**
 * A directory of the task's outputs (v1alpha2 `prefix`, v1alpha1 `save_dir`): relative, its segments
 * checked. One trailing `/` is dropped, as SD-on-EKS's queue agent joins `output/` and the id alike.
 */
const Prefix = z
  .string()
  .transform((v) => (v.endsWith("/") ? v.slice(0, -1) : v))
  .pipe(keyString(keyPathProblem, /^[A-Za-z0-9._\-/]{1,512}$/, "1 to 512 letters, digits, . _ - / only"));

export const EksTaskSchema = z
  .object({
    task: z.object({
      metadata: z.looseObject({
        id: TaskId,
        runtime: z.string().min(1).max(256),
        tasktype: TaskType,
        prefix: Prefix,
        context: z.unknown().refine((v) => (JSON.stringify(v) ?? "").length <= MAX_CONTEXT_CHARS, `at most ${MAX_CONTEXT_CHARS} characters of JSON`).optional(),
        webhook: z.string().optional(),
      }),
      // Read by task type once its links are fetched (`toIntake`).
      content: z.record(z.string(), z.unknown()),
    }),
  })
  .openapi("EksTask");

/** v1alpha1: the A1111 body itself; `alwayson_scripts` carries the task's routing fields (seed 001's second block). */
export const EksV1alpha1Schema = z
  .looseObject({
    alwayson_scripts: z.looseObject({
      task: z.enum(["text-to-image", "image-to-image"]),
      id_task: TaskId,
      image_link: z.string().optional(),
      sd_model_checkpoint: z.string().optional(),
      // The directory of the outputs, as v1alpha2's prefix: `<save_dir>/<id_task>`.
      save_dir: Prefix.optional(),
    }),
  })
  .openapi("EksV1alpha1Task");

/** One task, whichever version it came in. */
export interface EksTask {
  version: "v1alpha1" | "v1alpha2";
  id: string;
  runtime: string;
  tasktype: TaskType;
  /** Where its outputs go: `<prefix>/<id>` (v1alpha2), `<save_dir>/<id>` or `<id>` without one (v1alpha1). */
  location: string;
  /** The request's field that makes most of `location`, named when it is refused. */
  locationField: string;
  context: unknown;
  webhook?: string;
  content: Record<string, unknown>;
  /** The path of `content` in the request, for error messages. */
  under: string;
}

export function fromV1alpha2(body: z.infer<typeof EksTaskSchema>): EksTask {
  const { metadata, content } = body.task;
  return {
    version: "v1alpha2",
    id: metadata.id,
    runtime: metadata.runtime,
    tasktype: metadata.tasktype,
    location: `${metadata.prefix}/${metadata.id}`,
    locationField: "task.metadata.prefix",
    // The queue agent's notification says `{}` when the task had no context.
    context: metadata.context ?? {},
    webhook: metadata.webhook,
    content,
    under: "task.content.",
  };
}

export function fromV1alpha1(body: z.infer<typeof EksV1alpha1Schema>): EksTask {
  const scripts = body.alwayson_scripts;
  const location = scripts.save_dir === undefined ? scripts.id_task : `${scripts.save_dir}/${scripts.id_task}`;
  const locationField = scripts.save_dir === undefined ? "alwayson_scripts.id_task" : "alwayson_scripts.save_dir";
  return { version: "v1alpha1", id: scripts.id_task, runtime: "", tasktype: scripts.task, location, locationField, context: {}, content: body, under: "" };
}

/** S3's and R2's longest key, in bytes. */
const MAX_KEY_BYTES = 1024;
/** Room for the longest file name after the location: `/<id>-<rand>-<n>.webp` in S3, `/image_<n>.png` in R2. */
const FILE_NAME_ROOM = (id: string) => Math.max(1 + id.length + 6 + 10, "/image_9999.png".length);

/**
 * A task whose outputs' keys would pass the stores' limit is refused now, naming its field: taken,
 * it would run on a GPU and then fail to store what it made.
 */
export function locationTooLong(task: EksTask, tenant: string): EaselError | undefined {
  const r2 = new TextEncoder().encode(chosenOutputPrefix(tenant, task.location)).length;
  const s3 = task.location.length;
  if (Math.max(r2, s3) + FILE_NAME_ROOM(task.id) <= MAX_KEY_BYTES) return undefined;
  const message = `too long: with the task id, the outputs' keys would pass ${MAX_KEY_BYTES} bytes`;
  return new EaselError(422, "validation_failed", `${task.locationField}: ${message}`, [{ path: task.locationField, message }]);
}

export const eksType = (task: EksTask) => ({ "text-to-image": "txt2img", "image-to-image": "img2img", "extra-single-image": "upscale", "extra-batch-image": "upscale", pipeline: "workflow" })[task.tasktype];

/** The model a generation asks for: `alwayson_scripts.sd_model_checkpoint` (or override_settings). */
export const isGeneration = (task: EksTask) => task.tasktype === "text-to-image" || task.tasktype === "image-to-image";

/** `alwayson_scripts` keys that route the task and are not A1111 scripts (the queue agent strips them). */
const ROUTING_KEYS = new Set(["task", "id_task", "uid", "sd_model_checkpoint", "image_link", "save_dir", "sd_vae", "override_settings"]);

const BatchSchema = z.looseObject({ imageList: z.array(z.looseObject({ data: z.string().min(1), name: z.string().optional() })).min(1).max(1, "one image per task") });

function parsed<S extends z.ZodType>(schema: S, value: unknown, under: string): z.output<S> {
  const res = schema.safeParse(value);
  if (res.success) return res.data;
  const details = res.error.issues.map((i) => ({ path: `${under}${i.path.map(String).join(".")}`.replace(/\.$/, "") || "(body)", message: i.message }));
  throw new EaselError(422, "validation_failed", details.map((d) => `${d.path}: ${d.message}`).join("; "), details);
}

/**
 * The task's content (its links already fetched as base64) as a canonical job. Generations are
 * A1111 payloads: the image of an image-to-image is `init_images[0]` or `alwayson_scripts.image_link`,
 * the routing keys leave `alwayson_scripts`, and its `override_settings` join the body's. The
 * extras types are upscales, as A1111's extra-single-image takes them.
 */
export function toIntake(task: EksTask, content: unknown, model: string | undefined): { req: IntakeRequest; fields: IntakeOptions["fields"]; parameters?: Record<string, unknown> } {
  const { under } = task;
  const webhook = task.webhook;
  // SD-on-EKS's ComfyUI runtime queues `content` itself as the prompt: the graph, as exported.
  if (task.tasktype === "pipeline") return { req: { type: "workflow", workflow: content, webhook }, fields: { workflow: under.replace(/\.$/, "") } };
  if (task.tasktype === "extra-single-image") return { req: { ...fromExtras(parsed(ExtrasSingleImageSchema, content, under)), webhook }, fields: extrasFields(under) };
  if (task.tasktype === "extra-batch-image") {
    const { imageList, ...rest } = parsed(BatchSchema, content, under);
    const image = imageList[0]?.data ?? "";
    return { req: { ...fromExtras({ ...rest, image }), webhook }, fields: { ...extrasFields(under), init_image: `${under}imageList.0.data` } };
  }
  const type = task.tasktype === "image-to-image" ? "img2img" : "txt2img";
  const body = parsed(A1111RequestSchema, content, under);
  const scripts = body.alwayson_scripts ?? {};
  const scriptOverrides = scripts.override_settings && typeof scripts.override_settings === "object" ? (scripts.override_settings as Record<string, unknown>) : {};
  const cleaned = {
    ...body,
    alwayson_scripts: Object.fromEntries(Object.entries(scripts).filter(([k]) => !ROUTING_KEYS.has(k))),
    ...(Object.keys(scriptOverrides).length ? { override_settings: { ...body.override_settings, ...scriptOverrides } } : {}),
  };
  const link = typeof scripts.image_link === "string" ? scripts.image_link : undefined;
  const fromInit = body.init_images?.[0] ?? undefined;
  // SD-on-EKS's queue agent puts `image_link` in the place of `init_images` when both are there.
  const init = type === "img2img" ? (link ?? fromInit) : undefined;
  // One source image per job (see fromA1111), unless the link takes the list's place.
  if (type === "img2img" && link === undefined && (body.init_images?.length ?? 0) > 1) throw invalid(`${under}init_images`, "one init image per request");
  const fields = { ...a1111Fields(under, body), init_image: link !== undefined ? `${under}alwayson_scripts.image_link` : `${under}init_images.0` };
  return {
    req: { ...fromA1111(type, { ...cleaned, init_images: undefined }, model), init_image: init, webhook },
    fields,
    parameters: a1111Parameters(type, cleaned),
  };
}

/** Kept with the job for its answers, its notification and its manifest. */
export const eksData = (task: EksTask, parameters: Record<string, unknown> | undefined, model: string | undefined) => ({
  id_task: task.id,
  location: task.location,
  runtime: task.runtime,
  context: task.context,
  version: task.version,
  tasktype: task.tasktype,
  sd_model_checkpoint: model ?? null,
  ...(parameters ? { parameters } : {}),
});

/**
 * A task's place in R2 as its tenant sees it, `r2://<bucket>/<prefix>/<id>`: the tenant's own root
 * (`tenants/<tenant>/`), where the gateway keeps it, is the gateway's business.
 */
const r2Location = (env: Env, location: string) => `r2://${config.bucketName(env)}/${location}`;

/** Where a job's outputs are: its S3 location when they go to S3, else its R2 one (a job from before `location` was kept: its key's place). */
const locationOf = (env: Env, input: StoredJobInput) => {
  if (input.s3_output) return s3Url(input.s3_output, input.s3_output.prefix);
  const location = input.dialect_data.location;
  return r2Location(env, typeof location === "string" ? location : input.output_prefix);
};

/**
 * The answer to a submit: v1alpha2 `{id_task, runtime, output_location}` plus `id`, the same task id,
 * as SD-on-EKS's own submit function answers it; v1alpha1 `{id_task, sd_model_checkpoint, output_location}`.
 */
export function toEksSubmitted(env: Env, tenant: string, task: EksTask, model: string | undefined) {
  const bucket = config.s3OutputBucket(env);
  const output_location = bucket ? `s3://${bucket}/${task.location}` : r2Location(env, task.location);
  return task.version === "v1alpha1" ? { id_task: task.id, sd_model_checkpoint: model ?? null, output_location } : { id: task.id, id_task: task.id, runtime: task.runtime, output_location };
}

/** `GET /eks/v1/tasks/{id_task}`: the task's state and a signed download link per image. */
export async function toEksTask(env: Env, snapshot: JobSnapshot) {
  const { job, input } = snapshot;
  return {
    id_task: input.dialect_data.id_task,
    runtime: input.dialect_data.runtime,
    status: job.status,
    output_location: locationOf(env, input),
    images: job.status === "succeeded" ? await outputUrls(env, snapshot) : [],
    error: job.error,
    run_id: job.id,
  };
}

/**
 * SD-on-EKS's notification, as its SNS topic sends it: `{id, result, image_url, output_url, context}`.
 * With S3 outputs these are the `s3://` objects its queue agent would have written; else signed links
 * to the images and to the `.out` manifest in R2.
 */
export async function toEksNotification(env: Env, snapshot: JobSnapshot): Promise<Record<string, unknown>> {
  const { job, input } = snapshot;
  const out = input.s3_output;
  const succeeded = job.status === "succeeded";
  return {
    id: input.dialect_data.id_task,
    result: succeeded,
    image_url: !succeeded ? [] : out ? job.output.map((o, i) => s3Url(out, s3ImageKey(out, i, o.content_type))) : await outputUrls(env, snapshot),
    output_url: out ? s3Url(out, s3ManifestKey(out)) : await signedLink(env, snapshot, manifestKey(input.output_prefix)),
    context: input.dialect_data.context ?? "",
  };
}

/**
 * The `.out` file SD-on-EKS's queue agent writes beside the images: `{"images": [""], "parameters",
 * "info": ""}`, parameters being the A1111 request echoed with `id_task`, `image_seed` and an empty
 * `error_msg` (upscales: `html_info`), or on failure `id_task`, `status: 0`, `error_msg`, `reason`.
 */
export function eksManifest(input: StoredJobInput, result: ManifestResult) {
  const id_task = input.dialect_data.id_task;
  // Its ComfyUI runtime writes only a status code to the `.out` object of a pipeline task.
  if (input.spec.type === "workflow") return { code: result.ok ? 200 : 500 };
  if (!result.ok) return { images: [""], parameters: { id_task, status: 0, error_msg: result.message, reason: null }, info: "" };
  if (input.spec.type === "upscale") {
    const first = result.outputs[0];
    const html_info = first ? `<p>Postprocess upscale to: ${first.width}x${first.height}, upscaler: ${input.spec.upscale?.upscaler ?? "Lanczos"}</p>` : "";
    return { images: [""], parameters: { html_info, id_task, error_msg: "" }, info: "" };
  }
  const echoed = input.dialect_data.parameters && typeof input.dialect_data.parameters === "object" ? (input.dialect_data.parameters as Record<string, unknown>) : {};
  return { images: [""], parameters: { ...echoed, id_task, image_seed: result.outputs.map((o) => o.seed).join(","), error_msg: "" }, info: "" };
}

export const eksError = (err: EaselError) => ({ message: err.message, ...(err.details ? { errors: err.details } : {}) });

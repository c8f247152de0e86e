/**
 * "Stable Diffusion on EKS" tasks (seed 001): the client names the task, links in the content are
 * downloaded (http(s) and `s3://`), outputs land under `<prefix>/<id_task>/image_<n>.png`.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createApp, errorsAs } from "../app";
import { config } from "../config";
import type { Env } from "../env";
import { EaselError } from "../errors";
import { canonicalJson, randomId, sha256Hex } from "../lib/crypto";
import { readS3Object } from "../lib/s3-fetch";
import { MAX_INIT_IMAGE_BYTES, submitJob } from "../jobs/intake";
import type { JobSnapshot } from "../jobs/results";
import { bearerKey, tenantAuth } from "../middleware/auth";
import { tenantStub } from "../tenants";
import { A1111_FIELDS, A1111RequestSchema, fromA1111, requestedModel } from "./a1111";
import { outputUrls, publicBase, requireKnownModel, snapshotFor } from "./shared";

export const EksTaskSchema = z
  .object({
    task: z.object({
      metadata: z.looseObject({
        id: z.string().min(1).max(256),
        runtime: z.string().min(1),
        tasktype: z.enum(["text-to-image", "image-to-image"]),
        prefix: z.string().min(1).max(512).regex(/^[A-Za-z0-9._\-/]+$/, "letters, digits, . _ - / only"),
        context: z.unknown().optional(),
        webhook: z.string().optional(),
      }),
      content: A1111RequestSchema,
    }),
  })
  .openapi("EksTask");
export type EksTask = z.infer<typeof EksTaskSchema>;

const prefixOf = (metadata: EksTask["task"]["metadata"]) => `${metadata.prefix.replace(/^\/+|\/+$/g, "")}/${metadata.id}`;

export const outputLocation = (env: Env, prefix: string) => `r2://${config.bucketName(env)}/${prefix}`;

/** SD-on-EKS's notification: `{id, result, image_url, output_url, context}`. */
export async function toEksNotification(env: Env, snapshot: JobSnapshot): Promise<Record<string, unknown>> {
  const data = snapshot.input.dialect_data;
  return {
    id: data.id_task,
    result: snapshot.job.status === "succeeded",
    image_url: snapshot.job.status === "succeeded" ? await outputUrls(env, snapshot) : [],
    output_url: outputLocation(env, snapshot.input.output_prefix),
    context: data.context ?? "",
  };
}

export const eksError = (err: EaselError) => ({ message: err.message, ...(err.details ? { errors: err.details } : {}) });

export const eks = createApp();
eks.use("/eks/*", tenantAuth({ key: (c) => c.req.header("x-api-key") ?? bearerKey(c) }));
eks.onError(errorsAs(eksError));

eks.openapi(
  createRoute({
    method: "post",
    path: "/eks/v1/tasks",
    tags: ["SD on EKS"],
    summary: "Submit a task",
    request: { body: { content: { "application/json": { schema: EksTaskSchema } }, required: true } },
    responses: { 200: { description: "`{id_task, runtime, output_location}`" }, 409: { description: "The task id was used before" } },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const { metadata, content } = body.task;
    const tenant = c.var.tenant;
    const type = metadata.tasktype === "image-to-image" ? "img2img" : "txt2img";
    const model = requestedModel(content, undefined);
    await requireKnownModel(c.env, model, "task.content.alwayson_scripts.sd_model_checkpoint");
    const runId = randomId("run");
    const claim = await tenantStub(c.env, tenant).claim("eks_task", metadata.id, await sha256Hex(canonicalJson(body)), runId, null);
    if (claim.status !== "claimed") throw new EaselError(409, "task_exists", `task ${metadata.id} already exists`);

    const first = content.init_images?.[0];
    const init = first?.startsWith("s3://")
      ? await readS3Object(first, config.s3(c.env), { field: "task.content.init_images.0", maxBytes: MAX_INIT_IMAGE_BYTES })
      : first;
    const fields = Object.fromEntries(Object.entries(A1111_FIELDS).map(([k, v]) => [k, `task.content.${v}`]));
    const prefix = prefixOf(metadata);
    await submitJob(
      c.env,
      { ...fromA1111(type, content, model), init_image: type === "img2img" ? init : undefined, webhook: metadata.webhook },
      {
        tenant,
        dialect: "eks",
        runId,
        publicBaseUrl: publicBase(c),
        outputPrefix: prefix,
        fields: { ...fields, webhook: "task.metadata.webhook" },
        dialectData: { id_task: metadata.id, runtime: metadata.runtime, context: (metadata.context ?? "") as string },
      },
    );
    c.header("x-easel-run-id", runId);
    return c.json({ id_task: metadata.id, runtime: metadata.runtime, output_location: outputLocation(c.env, prefix) }, 200);
  },
);

eks.openapi(
  createRoute({
    method: "get",
    path: "/eks/v1/tasks/{id_task}",
    tags: ["SD on EKS"],
    summary: "A task's status and its images",
    request: { params: z.object({ id_task: z.string() }) },
    responses: { 200: { description: "The task" }, 404: { description: "No such task" } },
  }),
  async (c) => {
    const { id_task } = c.req.valid("param");
    const runId = await tenantStub(c.env, c.var.tenant).lookup("eks_task", id_task);
    const snapshot = runId ? await snapshotFor(c.env, runId, c.var.tenant) : undefined;
    if (!snapshot) throw new EaselError(404, "not_found", `task ${id_task} not found`);
    c.header("x-easel-run-id", snapshot.job.id);
    return c.json(
      {
        id_task,
        runtime: snapshot.input.dialect_data.runtime,
        status: snapshot.job.status,
        output_location: outputLocation(c.env, snapshot.input.output_prefix),
        images: snapshot.job.status === "succeeded" ? await outputUrls(c.env, snapshot) : [],
        error: snapshot.job.error,
        run_id: snapshot.job.id,
      },
      200,
    );
  },
);

/**
 * "Stable Diffusion on EKS" tasks (seed 001): the client names the task, links in `init_images`
 * are downloaded (http(s) through the core, `s3://` from the configured store), and the images
 * land under `<prefix>/<id_task>/` in R2.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { createApp, errorsAs } from "../../app";
import { config } from "../../config";
import type { Env } from "../../env";
import { EaselError } from "../../errors";
import { MAX_INIT_IMAGE_BYTES, submitJob } from "../../jobs/intake";
import { canonicalJson, randomId, sha256Hex } from "../../lib/crypto";
import { isS3Link, readS3Image } from "../../lib/s3-fetch";
import { tenantAuth } from "../../middleware/auth";
import { tenantStub } from "../../tenants";
import { a1111Fields, requestedModel } from "../a1111/translate";
import { apiKeyOrBearer } from "../keys";
import { requireKnownModel } from "../models";
import { snapshotFor } from "../wait";
import { EksTaskSchema, eksData, eksError, eksType, fromEks, outputPrefix, toEksSubmitted, toEksTask, type EksTask } from "./translate";

/**
 * Output locations are one namespace across tenants (one bucket), so each is claimed in a registry
 * of its own: no tenant can write into, or read back, another tenant's location. The leading NUL
 * keeps the name apart from any tenant an operator would configure.
 */
const LOCATIONS = "\u0000eks-output-locations";

export const eks = createApp();
eks.use("/eks/*", tenantAuth({ key: apiKeyOrBearer }));
eks.onError(errorsAs(eksError));

const taken = (what: string) => new EaselError(409, "task_exists", what);

/** Binds the task id (per tenant) and its output location (across tenants) to a run id. */
async function claimTask(env: Env, tenant: string, task: EksTask, body: unknown): Promise<string> {
  const runId = randomId("run");
  const location = await tenantStub(env, LOCATIONS).claim("eks_task", outputPrefix(task), await sha256Hex(tenant), runId, null);
  if (location.status === "conflict") throw taken(`the output location ${outputPrefix(task)} belongs to another account`);
  const claim = await tenantStub(env, tenant).claim("eks_task", task.metadata.id, await sha256Hex(canonicalJson(body)), runId, null);
  if (claim.status === "conflict") throw taken(`task ${task.metadata.id} already exists`);
  // The same task again: a 409 once its job exists; before that, the first try failed or is under way.
  if (claim.status === "existing" && (await snapshotFor(env, claim.runId, tenant))) throw taken(`task ${task.metadata.id} already exists`);
  return claim.runId;
}

eks.openapi(
  createRoute({
    method: "post",
    path: "/eks/v1/tasks",
    tags: ["SD on EKS"],
    summary: "Submit a task",
    request: { body: { content: { "application/json": { schema: EksTaskSchema } }, required: true } },
    responses: {
      200: { description: "`{id_task, runtime, output_location}`" },
      409: { description: "The task id was used before (`{message}`)" },
      422: { description: "`{message, errors}`" },
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const { task } = body;
    const tenant = c.var.tenant;
    const under = "task.content.";
    const { model, field } = requestedModel(task.content, undefined, under);
    await requireKnownModel(c.env, model, field);
    const first = task.content.init_images?.[0] ?? undefined;
    const initImage =
      first && eksType(task) === "img2img" && isS3Link(first)
        ? (
            await readS3Image(first, config.s3(c.env), {
              field: `${under}init_images.0`,
              maxBytes: MAX_INIT_IMAGE_BYTES,
              allowedPrefixes: config.tenant(c.env, tenant)?.s3_read_prefixes ?? [],
            })
          ).bytes
        : first;
    const runId = await claimTask(c.env, tenant, task, body);
    await submitJob(c.env, fromEks(task, initImage, model), {
      tenant,
      dialect: "eks",
      runId,
      publicBaseUrl: config.publicBaseUrl(c.env, c.req.url),
      outputPrefix: outputPrefix(task),
      fields: { ...a1111Fields(under), model: field, webhook: "task.metadata.webhook" },
      dialectData: eksData(task),
    });
    c.header("x-easel-run-id", runId);
    return c.json(toEksSubmitted(c.env, task), 200);
  },
);

eks.openapi(
  createRoute({
    method: "get",
    path: "/eks/v1/tasks/{id_task}",
    tags: ["SD on EKS"],
    summary: "A task's status and a signed download link per image",
    request: { params: z.object({ id_task: z.string() }) },
    responses: { 200: { description: "`{id_task, runtime, status, output_location, images, error, run_id}`" }, 404: { description: "No such task (`{message}`)" } },
  }),
  async (c) => {
    const { id_task } = c.req.valid("param");
    const runId = await tenantStub(c.env, c.var.tenant).lookup("eks_task", id_task);
    const snapshot = runId ? await snapshotFor(c.env, runId, c.var.tenant) : undefined;
    if (!snapshot) throw new EaselError(404, "not_found", `task ${id_task} not found`);
    c.header("x-easel-run-id", snapshot.job.id);
    return c.json(await toEksTask(c.env, snapshot), 200);
  },
);

/**
 * "Stable Diffusion on EKS" tasks (seed 001) at its own paths, `/{stage}/v1alpha2` and
 * `/{stage}/v1alpha1` (with or without the trailing slash its `test/run.sh` sends), and the first
 * release's `/eks/v1/tasks`. Links anywhere in a task's content are fetched (http(s) and `s3://`);
 * the images land under `<prefix>/<id_task>/`: in the S3 bucket in SD-on-EKS's own layout when
 * `S3_OUTPUT_BUCKET` is set, else in R2.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createApp, errorsAs } from "../../app";
import { config } from "../../config";
import type { Env } from "../../env";
import { EaselError } from "../../errors";
import { submitJob } from "../../jobs/intake";
import { fetchLinks } from "../../jobs/links";
import { requireKnownModel } from "../../jobs/models";
import { snapshotFor } from "../../jobs/tenant-job";
import { canonicalJson, sha256Hex } from "../../lib/crypto";
import { tenantAuth, type AppEnv } from "../../middleware/auth";
import { countsTowardRate } from "../../middleware/submit-rate";
import { keyShard } from "../../tenant-shards";
import { claimKey, releaseKey } from "../../jobs/claims";
import { A1111RequestSchema, requestedModel } from "../a1111/translate";
import { apiKeyOrBearer } from "../keys";
import { mintRunId } from "../../jobs/run-id";
import { claimOutputPrefix, releaseOutputPrefix } from "../../jobs/output-claims";
import { EksTaskSchema, EksV1alpha1Schema, eksData, eksError, fromV1alpha1, fromV1alpha2, isGeneration, locationTooLong, toEksSubmitted, toEksTask, toIntake, type EksTask } from "./translate";

/**
 * Each version with and without the trailing slash `test/run.sh` sends, and after the doubled slash
 * it sends when the stack's endpoint (CDK's `RestApi.url`) ends in one: API Gateway reads
 * `/prod//v1alpha2/` as `/prod/v1alpha2/`. The doubled forms stay out of the OpenAPI document.
 */
const versionPaths = (version: string) => [`/{stage}/${version}`, `/{stage}/${version}/`, `/{stage}//${version}`, `/{stage}//${version}/`] as const;
const STAGE_PATHS = [...versionPaths("v1alpha2"), ...versionPaths("v1alpha1")].map((p) => p.replace("{stage}", ":stage"));
const doubled = (path: string) => path.includes("//");

export const eks = createApp();
const auth = tenantAuth({ key: apiKeyOrBearer });
eks.use("/eks/*", auth);
// Only POSTs to exactly these shapes: no other route of the gateway ends in v1alpha1 or v1alpha2.
eks.on("POST", STAGE_PATHS, auth);
eks.onError(errorsAs(eksError));

const taken = (what: string) => new EaselError(409, "task_exists", what);

/**
 * Whether every tenant's tasks share one layout: SD-on-EKS's own, in `S3_OUTPUT_BUCKET`, where a
 * location is claimed across tenants. In R2 each tenant's tasks lie under its own root
 * (`tenants/<tenant>/`): two tenants may name the same location, and neither learns of the other's.
 */
const sharedLayout = (env: Env): boolean => config.s3OutputBucket(env) !== undefined;

/**
 * Binds the task id (per tenant) and, in the shared layout, its output location (across tenants)
 * to a run id. `claimed`: this request made the bindings (not a repeat of a task whose first try
 * failed or is under way).
 */
async function claimTask(env: Env, tenant: string, task: EksTask, body: unknown): Promise<{ runId: string; claimed: boolean }> {
  // The id first: a repeat refused for it claims no location (a claim with no job behind it would never expire).
  const claim = await claimKey(env, tenant, "eks_task", task.id, await sha256Hex(canonicalJson(body)), await mintRunId(env), null);
  if (claim.status === "conflict") throw taken(`task ${task.id} already exists`);
  // The same task again: a 409 once its job exists; before that, the first try failed or is under way.
  if (claim.status === "existing" && (await snapshotFor(env, claim.runId, tenant))) throw taken(`task ${task.id} already exists`);
  const claimed = claim.status === "claimed";
  if (sharedLayout(env)) {
    const location = await claimOutputPrefix(env, task.location, tenant, claim.runId);
    if (location.status === "conflict") {
      if (claimed) await releaseKey(env, tenant, "eks_task", task.id, claim.runId);
      throw taken(`the output location ${task.location} is in use, or lies inside a location in use: choose another prefix or task id`);
    }
  }
  return { runId: claim.runId, claimed };
}

/** A task refused before its job existed leaves nothing: its id and its location are free for the corrected task. */
async function freeTask(env: Env, tenant: string, task: EksTask, runId: string): Promise<void> {
  await Promise.all([releaseKey(env, tenant, "eks_task", task.id, runId), sharedLayout(env) ? releaseOutputPrefix(env, task.location, runId) : undefined]);
}

/** SD-on-EKS's file stem `<id>-<rand>`: four hex characters, as its queue agent takes from a uuid4. */
const stem = (id: string) => `${id}-${[...crypto.getRandomValues(new Uint8Array(2))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;

async function submitTask(c: Context<AppEnv>, task: EksTask, body: unknown) {
  const tenant = c.var.tenant;
  const tooLong = locationTooLong(task, tenant);
  if (tooLong) throw tooLong;
  let model: string | undefined;
  if (isGeneration(task)) {
    const picked = requestedModel(A1111RequestSchema.safeParse(task.content).data ?? {}, undefined, task.under);
    // The core's check, here rather than in intake: a task refused for its model must leave its id unclaimed.
    await requireKnownModel(c.env, picked.model, picked.field);
    model = picked.model;
  }
  // Links are read before the task id is claimed: a task refused for its images may be sent again.
  // A pipeline's graph goes to ComfyUI as sent, as SD-on-EKS's ComfyUI runtime sends it.
  const content = task.tasktype === "pipeline" ? task.content : await fetchLinks(c.env, tenant, task.content, task.under, config.publicBaseUrl(c.env, c.req.url));
  const { req, fields, parameters } = toIntake(task, content, model);
  const { runId, claimed } = await claimTask(c.env, tenant, task, body);
  const bucket = config.s3OutputBucket(c.env);
  try {
    await submitJob(c.env, req, {
      tenant,
      dialect: "eks",
      runId,
      publicBaseUrl: config.publicBaseUrl(c.env, c.req.url),
      outputLocation: task.location,
      s3Output: bucket ? { bucket, prefix: task.location, stem: stem(task.id) } : undefined,
      // No backend for the task's type: its type is the field to name.
      fields: { ...fields, webhook: task.version === "v1alpha2" ? "task.metadata.webhook" : "webhook", backend: task.version === "v1alpha2" ? "task.metadata.tasktype" : "alwayson_scripts.task" },
      dialectData: eksData(task, parameters, model),
      // Its content is an A1111 payload, which A1111 generates from with an empty prompt.
      emptyPromptOk: true,
      rateCounted: c.var.rateCounted,
    });
  } catch (err) {
    // Refused (a 4xx names why): no job was made. A repeat leaves the first try's bindings alone.
    if (claimed && err instanceof EaselError && err.status < 500) await freeTask(c.env, tenant, task, runId);
    throw err;
  }
  c.header("x-easel-run-id", runId);
  return c.json(toEksSubmitted(c.env, tenant, task, model), 200);
}

const described = (description: string) => ({ description });
const errors = { 401: described("`{message}`"), 409: described("The task id was used before (`{message}`)"), 422: described("`{message, errors}`") };

eks.openapi(
  createRoute({
    method: "post",
    path: "/eks/v1/tasks",
    tags: ["SD on EKS"],
    summary: "Submit a v1alpha2 task (the first release's path)",
    middleware: [countsTowardRate] as const,
    request: { body: { content: { "application/json": { schema: EksTaskSchema } }, required: true } },
    responses: { 200: described("`{id, id_task, runtime, output_location}`"), ...errors },
  }),
  async (c) => {
    const body = c.req.valid("json");
    return submitTask(c, fromV1alpha2(body), body);
  },
);

for (const path of versionPaths("v1alpha2")) {
  eks.openapi(
    createRoute({
      method: "post",
      path,
      hide: doubled(path),
      tags: ["SD on EKS"],
      summary: "Submit a v1alpha2 task, as SD-on-EKS's API Gateway takes it (any stage name)",
      middleware: [countsTowardRate] as const,
      request: { params: z.object({ stage: z.string().min(1).max(128) }), body: { content: { "application/json": { schema: EksTaskSchema } }, required: true } },
      responses: { 200: described("`{id, id_task, runtime, output_location}`"), ...errors },
    }),
    async (c) => {
      const body = c.req.valid("json");
      return submitTask(c, fromV1alpha2(body), body);
    },
  );
}

for (const path of versionPaths("v1alpha1")) {
  eks.openapi(
    createRoute({
      method: "post",
      path,
      hide: doubled(path),
      tags: ["SD on EKS"],
      summary: "Submit a v1alpha1 task: the A1111 body with alwayson_scripts.{task, id_task, image_link, sd_model_checkpoint, save_dir}",
      middleware: [countsTowardRate] as const,
      request: { params: z.object({ stage: z.string().min(1).max(128) }), body: { content: { "application/json": { schema: EksV1alpha1Schema } }, required: true } },
      responses: { 200: described("`{id_task, sd_model_checkpoint, output_location}`"), ...errors },
    }),
    async (c) => {
      const body = c.req.valid("json");
      return submitTask(c, fromV1alpha1(body), body);
    },
  );
}

eks.openapi(
  createRoute({
    method: "get",
    path: "/eks/v1/tasks/{id_task}",
    tags: ["SD on EKS"],
    summary: "A task's status and a signed download link per image",
    request: { params: z.object({ id_task: z.string() }) },
    responses: { 200: described("`{id_task, runtime, status, output_location, images, error, run_id}`"), 404: described("No such task (`{message}`)") },
  }),
  async (c) => {
    const { id_task } = c.req.valid("param");
    const runId = await keyShard(c.env, c.var.tenant, id_task).lookup("eks_task", id_task);
    const snapshot = runId ? await snapshotFor(c.env, runId, c.var.tenant) : undefined;
    if (!snapshot) throw new EaselError(404, "not_found", `task ${id_task} not found`);
    c.header("x-easel-run-id", snapshot.job.id);
    return c.json(await toEksTask(c.env, snapshot), 200);
  },
);

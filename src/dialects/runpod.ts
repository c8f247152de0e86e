/**
 * The RunPod serverless API of seed 000's A1111 worker: `/run`, `/runsync`, `/status/{id}`,
 * `/cancel/{id}`, with `input.api_name` choosing txt2img, img2img, getModels, getOptions or setOptions.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createApp, errorsAs } from "../app";
import type { Env } from "../env";
import { tenantStub } from "../tenants";
import { EaselError } from "../errors";
import { isOk, jobStub } from "../jobs/client";
import { submitJob } from "../jobs/intake";
import type { JobSnapshot } from "../jobs/results";
import { tenantAuth, type AppEnv } from "../middleware/auth";
import { A1111_FIELDS, A1111RequestSchema, fromA1111, requestedModel, toA1111Response } from "./a1111";
import { cachedModels, outputsBase64, publicBase, rawOrBearerKey, requireKnownModel, snapshotFor, waitForEnd, type ImagesAsBase64 } from "./shared";

/** RunPod keeps a `/run` job's result for 30 minutes. */
const INSTANT_RESULT_TTL_MS = 30 * 60_000;
/** RunPod answers `/runsync` within this long, else with the job still in progress. */
const RUNSYNC_WAIT_MS = 90_000;

export const RunPodRequestSchema = z
  .object({
    input: A1111RequestSchema.extend({ api_name: z.enum(["txt2img", "img2img", "getModels", "getOptions", "setOptions"]) }),
    webhook: z.string().optional(),
  })
  .openapi("RunPodRequest");

const STATUS = { queued: "IN_QUEUE", running: "IN_PROGRESS", succeeded: "COMPLETED", failed: "FAILED", canceled: "CANCELLED" } as const;

/** RunPod's status object; `output` is the A1111 response, as the worker returns it. */
export async function toRunPodStatus(snapshot: JobSnapshot, images: ImagesAsBase64): Promise<Record<string, unknown>> {
  const { job } = snapshot;
  const created = Date.parse(job.created_at);
  const started = job.started_at ? Date.parse(job.started_at) : undefined;
  const body: Record<string, unknown> = { id: job.id, status: STATUS[job.status], delayTime: job.metrics.queue_ms };
  if (started !== undefined) body.executionTime = job.metrics.run_ms;
  if (job.status === "succeeded") body.output = toA1111Response(snapshot, await images(snapshot), snapshot.input.dialect_data.parameters ?? {});
  if (job.status === "failed") body.error = job.error?.message ?? "job failed";
  if (!started && job.status === "queued") body.delayTime = Date.now() - created;
  return body;
}


/** The worker's non-generation calls answer at once, as COMPLETED jobs. */
async function instant(c: Context<AppEnv>, apiName: string, input: Record<string, unknown>) {
  const state = tenantStub(c.env, c.var.tenant);
  let output: unknown;
  if (apiName === "getModels") {
    output = (await cachedModels(c.env)).map(({ model: { title, model_name, hash, sha256, filename, config } }) => ({ title, model_name, hash, sha256, filename, config }));
  } else if (apiName === "getOptions") {
    const stored = await state.getOptions();
    output = { ...stored, sd_model_checkpoint: stored.sd_model_checkpoint ?? (await cachedModels(c.env))[0]?.model.title ?? null };
  } else {
    const { api_name: _name, ...options } = input;
    await requireKnownModel(c.env, typeof options.sd_model_checkpoint === "string" ? options.sd_model_checkpoint : undefined, "input.sd_model_checkpoint");
    await state.setOptions(options);
    output = null;
  }
  const result = { id: crypto.randomUUID(), status: "COMPLETED", delayTime: 0, executionTime: 0, output };
  await state.putResult(result.id, JSON.stringify(result), INSTANT_RESULT_TTL_MS);
  return result;
}

export const runpodError = (err: EaselError) => ({ error: err.message, ...(err.details ? { details: err.details } : {}) });

export const runpod = createApp();
runpod.use("/runpod/*", tenantAuth({ key: rawOrBearerKey }));
runpod.onError(errorsAs(runpodError));

async function start(c: Context<AppEnv>, body: z.infer<typeof RunPodRequestSchema>) {
  const { api_name, ...payload } = body.input;
  if (api_name !== "txt2img" && api_name !== "img2img") return { instant: await instant(c, api_name, body.input) };
  const tenant = c.var.tenant;
  const model = requestedModel(payload, (await tenantStub(c.env, tenant).getOptions()).sd_model_checkpoint);
  await requireKnownModel(c.env, model, "input.override_settings.sd_model_checkpoint");
  const prefixed = Object.fromEntries(Object.entries(A1111_FIELDS).map(([k, v]) => [k, `input.${v}`]));
  const { snapshot } = await submitJob(c.env, { ...fromA1111(api_name, payload, model), webhook: body.webhook }, {
    tenant,
    dialect: "runpod",
    publicBaseUrl: publicBase(c),
    fields: prefixed,
    dialectData: { parameters: payload },
  });
  c.header("x-easel-run-id", snapshot.job.id);
  return { snapshot };
}

const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const Status = z.looseObject({ id: z.string(), status: z.enum(["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"]) }).openapi("RunPodStatus");
const body = { content: { "application/json": { schema: RunPodRequestSchema } }, required: true };

runpod.openapi(
  createRoute({ method: "post", path: "/runpod/run", tags: ["RunPod worker"], summary: "Queue a job", request: { body }, responses: { 200: json(Status, "`{id, status}`") } }),
  async (c) => {
    const started = await start(c, c.req.valid("json"));
    if ("instant" in started) return c.json(started.instant, 200);
    return c.json({ id: started.snapshot.job.id, status: STATUS[started.snapshot.job.status] }, 200);
  },
);

runpod.openapi(
  createRoute({ method: "post", path: "/runpod/runsync", tags: ["RunPod worker"], summary: "Run a job and wait for it", request: { body }, responses: { 200: json(Status, "The status object") } }),
  async (c) => {
    const started = await start(c, c.req.valid("json"));
    if ("instant" in started) return c.json(started.instant, 200);
    const done = await waitForEnd(c.env, started.snapshot.job.id, c.var.tenant, c.req.raw.signal, RUNSYNC_WAIT_MS).catch((err: unknown) => {
      if (err instanceof EaselError && err.status === 504) return undefined;
      throw err;
    });
    const latest = done ?? (await snapshotFor(c.env, started.snapshot.job.id, c.var.tenant));
    if (!latest) throw new EaselError(404, "not_found", "job not found");
    return c.json(await toRunPodStatus(latest, (s) => outputsBase64(c.env, s)), 200);
  },
);

const IdParam = z.object({ id: z.string() });

runpod.openapi(
  createRoute({ method: "get", path: "/runpod/status/{id}", tags: ["RunPod worker"], summary: "A job's status", request: { params: IdParam }, responses: { 200: json(Status, "The status object") } }),
  async (c) => {
    const { id } = c.req.valid("param");
    const snapshot = await snapshotFor(c.env, id, c.var.tenant);
    if (snapshot) return c.json(await toRunPodStatus(snapshot, (s) => outputsBase64(c.env, s)), 200);
    const instant = await tenantStub(c.env, c.var.tenant).getResult(id);
    if (!instant) throw new EaselError(404, "not_found", "job not found");
    return c.json(JSON.parse(instant) as Record<string, unknown>, 200);
  },
);

runpod.openapi(
  createRoute({ method: "post", path: "/runpod/cancel/{id}", tags: ["RunPod worker"], summary: "Cancel a job", request: { params: IdParam }, responses: { 200: json(Status, "`{id, status}`") } }),
  async (c) => {
    const { id } = c.req.valid("param");
    const snapshot = await snapshotFor(c.env, id, c.var.tenant);
    if (!snapshot) throw new EaselError(404, "not_found", "job not found");
    const res = await jobStub(c.env, id).cancel(c.var.tenant);
    // Canceling an ended job is no error on RunPod: it answers with the job's final status.
    const job = isOk(res) ? res.snapshot.job : snapshot.job;
    return c.json({ id, status: STATUS[job.status] }, 200);
  },
);


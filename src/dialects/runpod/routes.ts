/**
 * The RunPod serverless API in front of seed 000's A1111 worker: `/run`, `/runsync`,
 * `/status/{id}`, `/cancel/{id}`, with `input.api_name` choosing the worker's call.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createApp, errorsAs } from "../../app";
import { config } from "../../config";
import { EaselError } from "../../errors";
import { isOk, jobStub } from "../../jobs/client";
import { submitJob } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import { tenantAuth, type AppEnv } from "../../middleware/auth";
import { tenantStub } from "../../tenants";
import { a1111Models, a1111Options, setA1111Options } from "../a1111/settings";
import { a1111Fields, requestedModel } from "../a1111/translate";
import { rawOrBearerKey } from "../keys";
import { requireKnownModel } from "../models";
import { outputsBase64 } from "../outputs";
import { snapshotFor, waitForEnd } from "../wait";
import { RunPodRequestSchema, fromRunPod, instantResult, isGeneration, runPodData, runPodStatus, runpodError, toRunPodStatus, type RunPodRequest, type SettingsInput } from "./translate";

/** RunPod keeps a `/run` job's result for 30 minutes. */
const INSTANT_RESULT_TTL_MS = 30 * 60_000;
/** RunPod answers `/runsync` within this long, else with the job still in progress. */
const RUNSYNC_WAIT_MS = 90_000;

export const runpod = createApp();
runpod.use("/runpod/*", tenantAuth({ key: rawOrBearerKey }));
runpod.onError(errorsAs(runpodError));

/** The worker's settings calls, answered at once as the A1111 dialect answers them, and kept for `/status`. */
async function instant(c: Context<AppEnv>, input: SettingsInput) {
  const { env } = c;
  const tenant = c.var.tenant;
  let output: unknown = null;
  if (input.api_name === "getModels") output = await a1111Models(env);
  else if (input.api_name === "getOptions") output = await a1111Options(env, tenant);
  else {
    const { api_name: _call, ...options } = input;
    await setA1111Options(env, tenant, options, "input.sd_model_checkpoint");
  }
  const result = instantResult(output);
  await tenantStub(env, tenant).putResult(result.id, JSON.stringify(result), INSTANT_RESULT_TTL_MS);
  return result;
}

async function start(c: Context<AppEnv>, body: RunPodRequest): Promise<{ instant: ReturnType<typeof instantResult> } | { snapshot: JobSnapshot }> {
  const { input } = body;
  if (!isGeneration(input)) return { instant: await instant(c, input) };
  const tenant = c.var.tenant;
  const { model, field } = requestedModel(input, (await tenantStub(c.env, tenant).getOptions()).sd_model_checkpoint, "input.");
  await requireKnownModel(c.env, model, field);
  const { snapshot } = await submitJob(c.env, fromRunPod(input, body.webhook, model), {
    tenant,
    dialect: "runpod",
    publicBaseUrl: config.publicBaseUrl(c.env, c.req.url),
    fields: { ...a1111Fields("input."), model: field },
    dialectData: runPodData(input),
  });
  c.header("x-easel-run-id", snapshot.job.id);
  return { snapshot };
}

const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const Status = z.looseObject({ id: z.string(), status: z.enum(["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"]) }).openapi("RunPodStatus");
const Failure = { description: "`{error}`" };
const body = { content: { "application/json": { schema: RunPodRequestSchema } }, required: true };
const IdParam = z.object({ id: z.string() });

runpod.openapi(
  createRoute({ method: "post", path: "/runpod/run", tags: ["RunPod worker"], summary: "Queue a job", request: { body }, responses: { 200: json(Status, "`{id, status}`"), 422: Failure } }),
  async (c) => {
    const started = await start(c, c.req.valid("json"));
    if ("instant" in started) return c.json(started.instant, 200);
    return c.json({ id: started.snapshot.job.id, status: runPodStatus(started.snapshot.job) }, 200);
  },
);

runpod.openapi(
  createRoute({ method: "post", path: "/runpod/runsync", tags: ["RunPod worker"], summary: "Run a job and wait for it (90 s at most)", request: { body }, responses: { 200: json(Status, "The status object"), 422: Failure } }),
  async (c) => {
    const started = await start(c, c.req.valid("json"));
    if ("instant" in started) return c.json(started.instant, 200);
    const latest = await waitForEnd(c.env, started.snapshot.job.id, c.var.tenant, {
      signal: c.req.raw.signal,
      waitUntil: (p) => c.executionCtx.waitUntil(p),
      maxMs: RUNSYNC_WAIT_MS,
    });
    return c.json(await toRunPodStatus(latest, outputsBase64(c.env)), 200);
  },
);

runpod.openapi(
  createRoute({ method: "get", path: "/runpod/status/{id}", tags: ["RunPod worker"], summary: "A job's status", request: { params: IdParam }, responses: { 200: json(Status, "The status object"), 404: Failure } }),
  async (c) => {
    const { id } = c.req.valid("param");
    const snapshot = await snapshotFor(c.env, id, c.var.tenant);
    if (snapshot) return c.json(await toRunPodStatus(snapshot, outputsBase64(c.env)), 200);
    const kept = await tenantStub(c.env, c.var.tenant).getResult(id);
    if (!kept) throw new EaselError(404, "not_found", "job not found");
    return c.json(JSON.parse(kept) as Record<string, unknown>, 200);
  },
);

runpod.openapi(
  createRoute({ method: "post", path: "/runpod/cancel/{id}", tags: ["RunPod worker"], summary: "Cancel a job", request: { params: IdParam }, responses: { 200: json(Status, "`{id, status}`"), 404: Failure } }),
  async (c) => {
    const { id } = c.req.valid("param");
    const snapshot = await snapshotFor(c.env, id, c.var.tenant);
    if (!snapshot) throw new EaselError(404, "not_found", "job not found");
    const res = await jobStub(c.env, id).cancel(c.var.tenant);
    // Canceling an ended job is no error on RunPod: it answers with the job's final status.
    return c.json({ id, status: runPodStatus(isOk(res) ? res.snapshot.job : snapshot.job) }, 200);
  },
);

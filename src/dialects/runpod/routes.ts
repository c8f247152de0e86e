/**
 * RunPod's serverless API in front of seed 000's A1111 worker, at RunPod's own paths
 * (`/v2/{endpoint_id}/run`...: only the host changes) and at the first release's `/runpod/...`
 * alias (the endpoint named `runpod`). `input.api_name` chooses the worker's call.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createApp, errorsAs } from "../../app";
import { config } from "../../config";
import type { Env } from "../../env";
import { endpointRoute } from "../../jobs/endpoints";
import { EaselError } from "../../errors";
import { isOk, jobStub, unwrap } from "../../jobs/client";
import { submitJob } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import { hasEnded, waitForEnd } from "../../jobs/sync-wait";
import { snapshotFor } from "../../jobs/tenant-job";
import { tenantAuth, type AppEnv } from "../../middleware/auth";
import { countsTowardRate } from "../../middleware/submit-rate";
import { readmitJob } from "../../jobs/limits";
import { checkInstantId, mintInstantId } from "../../jobs/run-id";
import { runShard, tenantHome } from "../../tenant-shards";
import { a1111Models, a1111Options, setA1111Options } from "../a1111/settings";
import { requestedModel } from "../a1111/translate";
import { rawOrBearerKey } from "../keys";
import { JSON_HEADERS, jsonWithImages } from "../outputs";
import { outputPlaces } from "../../webhooks/body-slots";
import { endpointHealth, purgeEndpointQueue } from "./endpoint";
import {
  RunPodRequestSchema,
  echoedInput,
  fromRunPod,
  fromRunPodUpscale,
  instantResult,
  isGeneration,
  isUpscale,
  policyLimits,
  runPodData,
  runPodFields,
  runPodStatus,
  runpodError,
  toRunPodStatus,
  toRunPodStream,
  type RunPodRequest,
  type SettingsInput,
} from "./translate";

/** RunPod keeps a `/run` job's result for 30 minutes; an instant answer is kept as long, or `RETENTION_S` if shorter, as a job would be. */
const instantTtlMs = (env: Env): number => Math.min(30 * 60_000, config.retentionMs(env));
/** Beside a kept instant answer: its one stream item was read. */
const STREAMED = "#streamed";
/** `?wait=` of `/runsync` and `/status-sync`, in ms, as RunPod bounds it. */
const WAIT = { min: 1000, max: 300_000, default: 90_000 } as const;
/**
 * `/stream` holds the request this long for the job to end before answering what there is:
 * runpod-sdk asks again at once, so an early answer would spin, and runpod-python gives up on a
 * request after 10 s.
 */
const STREAM_HOLD_MS = 5_000;
/** The alias paths stand for the endpoint of this name. */
const ALIAS_ENDPOINT = "runpod";

export const runpod = createApp();
runpod.use("/runpod/*", tenantAuth({ key: rawOrBearerKey }));
runpod.use("/v2/*", tenantAuth({ key: rawOrBearerKey }));
runpod.onError(errorsAs(runpodError));

const endpointOf = (c: Context<AppEnv>): string => c.req.param("endpoint_id") ?? ALIAS_ENDPOINT;

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
  const result = instantResult(await mintInstantId(env, endpointOf(c)), output);
  await tenantHome(env, tenant).putResult(result.id, JSON.stringify(result), instantTtlMs(env));
  return result;
}

/**
 * Creates the job behind a `/run` or `/runsync`. The endpoint may stand for a backend or a model
 * (`ENDPOINTS`); the request's own model overrides the endpoint's, which overrides the tenant's option.
 */
async function start(c: Context<AppEnv>, body: RunPodRequest): Promise<{ instant: ReturnType<typeof instantResult> } | { snapshot: JobSnapshot }> {
  const { input } = body;
  if (!isGeneration(input) && !isUpscale(input)) return { instant: await instant(c, input) };
  const tenant = c.var.tenant;
  const endpoint = endpointOf(c);
  const route = endpointRoute(c.env, endpoint, isUpscale(input) ? "upscale" : input.api_name, { field: "input.api_name", message: `endpoint ${endpoint} does not serve ${input.api_name}` });
  let req;
  let fields = runPodFields(input);
  if (isUpscale(input)) req = fromRunPodUpscale(input, body.webhook);
  else {
    const { model, field } = requestedModel(input, route.model ?? (await tenantHome(c.env, tenant).getOptions()).sd_model_checkpoint, "input.");
    req = fromRunPod(input, body.webhook, model);
    fields = { ...fields, model: field };
  }
  const { snapshot } = await submitJob(
    c.env,
    { ...req, backend: route.backend, pin_overrides_models: route.pin_overrides_models, ...policyLimits(body.policy) },
    {
      tenant,
      dialect: "runpod",
      publicBaseUrl: config.publicBaseUrl(c.env, c.req.url),
      fields: { ...fields, webhook: "webhook", timeout_s: "policy.ttl", run_timeout_s: "policy.executionTimeout" },
      // The body as sent, read again from the request's kept text: the webhook echoes `input` unparsed.
      dialectData: runPodData(input, endpoint, echoedInput(await c.req.json())),
      // As the A1111 it fronts (a pinned endpoint runs what its backend has, listed or not).
      knownModelsOnly: true,
      emptyPromptOk: true,
      rateCounted: c.var.rateCounted,
    },
  );
  await runShard(c.env, tenant, snapshot.job.id).trackEndpointJob(endpoint, snapshot.job.id);
  c.header("x-easel-run-id", snapshot.job.id);
  return { snapshot };
}

/** The tenant's job at this endpoint; a job of another endpoint does not exist here, as on RunPod. */
async function jobAt(c: Context<AppEnv>, id: string): Promise<JobSnapshot | undefined> {
  const snapshot = await snapshotFor(c.env, id, c.var.tenant);
  return snapshot && snapshot.input.dialect === "runpod" && (snapshot.input.dialect_data.endpoint ?? ALIAS_ENDPOINT) === endpointOf(c) ? snapshot : undefined;
}

const notFound = () => new EaselError(404, "not_found", "job not found");

/**
 * An instant answer kept for the tenant, read back at the endpoint it was given at: only an id
 * minted for one there names one, so reading any other string touches no object.
 */
async function keptInstant(c: Context<AppEnv>, id: string): Promise<ReturnType<typeof instantResult>> {
  if (!(await checkInstantId(c.env, id, endpointOf(c)))) throw notFound();
  const kept = await tenantHome(c.env, c.var.tenant).getResult(id);
  if (!kept) throw notFound();
  return JSON.parse(kept) as ReturnType<typeof instantResult>;
}

/** Waits for the job to end, at most `wait` ms (RunPod's bounds, its default 90 s), then answers its status object. */
async function waitAndAnswer(c: Context<AppEnv>, id: string, wait: number | undefined) {
  const latest = await waitForEnd(c.env, id, c.var.tenant, { maxMs: Math.min(WAIT.max, Math.max(WAIT.min, wait ?? WAIT.default)) });
  return c.body(await jsonWithImages(c.env, latest.output_keys, await toRunPodStatus(latest, outputPlaces)), 200, JSON_HEADERS);
}

const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const Status = z
  .looseObject({ id: z.string(), status: z.enum(["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]), delayTime: z.number().optional(), executionTime: z.number().optional(), output: z.unknown().optional(), error: z.string().optional() })
  .openapi("RunPodStatus");
// Described, not typed: a typed route could only answer c.json, and answers with base64 images are streamed.
const Failure = { description: "`{error}`" };
const body = { content: { "application/json": { schema: RunPodRequestSchema } }, required: true };
const WaitQuery = z.object({ wait: z.coerce.number().int().optional().openapi({ description: `ms to wait, ${WAIT.min}–${WAIT.max} (default ${WAIT.default})` }) });

for (const base of ["/runpod", "/v2/{endpoint_id}"] as const) {
  const tags = [base === "/runpod" ? "RunPod worker (alias)" : "RunPod worker"];
  const Endpoint = base === "/runpod" ? z.object({}) : z.object({ endpoint_id: z.string().min(1).max(128) });
  const WithId = Endpoint.extend({ id: z.string() });

  runpod.openapi(
    createRoute({ method: "post", path: `${base}/run`, tags, summary: "Queue a job", middleware: [countsTowardRate] as const, request: { params: Endpoint, body }, responses: { 200: json(Status, "`{id, status}`"), 401: Failure, 422: Failure } }),
    async (c) => {
      const started = await start(c, c.req.valid("json"));
      if ("instant" in started) return c.json(started.instant, 200);
      return c.json({ id: started.snapshot.job.id, status: runPodStatus(started.snapshot.job) }, 200);
    },
  );

  runpod.openapi(
    createRoute({
      method: "post",
      path: `${base}/runsync`,
      tags,
      summary: "Run a job and wait for it; past `wait`, the job's status object as it then is",
      middleware: [countsTowardRate] as const,
      request: { params: Endpoint, query: WaitQuery, body },
      responses: { 200: json(Status, "The status object"), 401: Failure, 422: Failure },
    }),
    async (c) => {
      const started = await start(c, c.req.valid("json"));
      if ("instant" in started) return c.json(started.instant, 200);
      return waitAndAnswer(c, started.snapshot.job.id, c.req.valid("query").wait);
    },
  );

  runpod.openapi(
    createRoute({ method: "get", path: `${base}/status/{id}`, tags, summary: "A job's status", request: { params: WithId }, responses: { 200: json(Status, "The status object"), 404: Failure } }),
    async (c) => {
      const { id } = c.req.valid("param");
      const snapshot = await jobAt(c, id);
      if (snapshot) return c.body(await jsonWithImages(c.env, snapshot.output_keys, await toRunPodStatus(snapshot, outputPlaces)), 200, JSON_HEADERS);
      return c.json(await keptInstant(c, id), 200);
    },
  );

  for (const method of ["get", "post"] as const) {
    runpod.openapi(
      createRoute({
        method,
        path: `${base}/status-sync/{id}`,
        tags,
        summary: "A job's status once it ended, or when `wait` ran out",
        request: { params: WithId, query: WaitQuery },
        responses: { 200: json(Status, "The status object"), 404: Failure },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        if (await jobAt(c, id)) return waitAndAnswer(c, id, c.req.valid("query").wait);
        return c.json(await keptInstant(c, id), 200);
      },
    );
  }

  runpod.openapi(
    createRoute({
      method: "get",
      path: `${base}/stream/{id}`,
      tags,
      summary: "`{status, stream}`: the worker's output as one stream item, to the first read after the job completed",
      request: { params: WithId },
      responses: { 200: json(z.object({ status: z.string(), stream: z.array(z.unknown()) }).openapi("RunPodStream"), "`{status, stream: [{output}]}`"), 404: Failure },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      if (!(await jobAt(c, id))) {
        // An instant answer is a completed job's: its output is the one item, to the first read only.
        const { status, output } = await keptInstant(c, id);
        const first = (await tenantHome(c.env, c.var.tenant).getResult(`${id}${STREAMED}`)) === null;
        if (first) await tenantHome(c.env, c.var.tenant).putResult(`${id}${STREAMED}`, "1", instantTtlMs(c.env));
        return c.json({ status, stream: first ? [{ output }] : [] }, 200);
      }
      const latest = await waitForEnd(c.env, id, c.var.tenant, { maxMs: STREAM_HOLD_MS });
      if (!hasEnded(latest.job)) return c.body(await jsonWithImages(c.env, latest.output_keys, await toRunPodStream(latest, false, outputPlaces)), 200, JSON_HEADERS);
      // As RunPod's stream, each output is read once: a reader stops at an ended job's empty stream.
      const read = await jobStub(c.env, id).readStream(c.var.tenant);
      if (!isOk(read)) throw notFound();
      return c.body(await jsonWithImages(c.env, read.snapshot.output_keys, await toRunPodStream(read.snapshot, read.output, outputPlaces)), 200, JSON_HEADERS);
    },
  );

  runpod.openapi(
    createRoute({ method: "post", path: `${base}/cancel/{id}`, tags, summary: "Cancel a job", request: { params: WithId }, responses: { 200: json(Status, "`{id, status}`"), 404: Failure } }),
    async (c) => {
      const { id } = c.req.valid("param");
      const snapshot = await jobAt(c, id);
      if (!snapshot) {
        // An instant answer ended as it was given: canceling it answers its final status, as for any ended job.
        const { status, delayTime, executionTime } = await keptInstant(c, id);
        return c.json({ id, status, delayTime, executionTime }, 200);
      }
      const res = await jobStub(c.env, id).cancel(c.var.tenant);
      const job = isOk(res) ? res.snapshot.job : snapshot.job;
      // Canceling an ended job is no error on RunPod: it answers with the job's final status.
      return c.json({ id, status: runPodStatus(job), delayTime: job.metrics.queue_ms, executionTime: job.metrics.run_ms }, 200);
    },
  );

  runpod.openapi(
    createRoute({
      method: "post",
      path: `${base}/retry/{id}`,
      tags,
      summary: "Requeue a FAILED or TIMED_OUT job under its own id",
      // A retry runs the job on a GPU again: it counts as a submit, and against max_active_jobs.
      middleware: [countsTowardRate] as const,
      request: { params: WithId },
      responses: { 200: json(Status, "`{id, status: IN_QUEUE}`"), 404: Failure, 409: Failure, 429: Failure },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const found = await jobAt(c, id);
      if (!found) throw notFound();
      if (found.job.status === "failed") await readmitJob(c.env, c.var.tenant, id);
      const { snapshot } = unwrap(await jobStub(c.env, id).retry(c.var.tenant));
      await runShard(c.env, c.var.tenant, id).noteEndpointJob(id, snapshot.job.status, true);
      return c.json({ id, status: runPodStatus(snapshot.job) }, 200);
    },
  );

  runpod.openapi(
    createRoute({
      method: "get",
      path: `${base}/health`,
      tags,
      summary: "This tenant's jobs at this endpoint (the last day) and the workers behind it",
      request: { params: Endpoint },
      responses: { 200: json(z.object({ jobs: z.record(z.string(), z.number()), workers: z.record(z.string(), z.number()) }).openapi("RunPodHealth"), "`{jobs, workers}`") },
    }),
    async (c) => c.json(await endpointHealth(c.env, c.var.tenant, endpointOf(c)), 200),
  );

  runpod.openapi(
    createRoute({
      method: "post",
      path: `${base}/purge-queue`,
      tags,
      summary: "Cancel this tenant's queued jobs at this endpoint (running ones go on)",
      request: { params: Endpoint },
      responses: { 200: json(z.object({ removed: z.number(), status: z.string() }).openapi("RunPodPurge"), "`{removed, status}`") },
    }),
    async (c) => c.json(await purgeEndpointQueue(c.env, c.var.tenant, endpointOf(c)), 200),
  );
}

/**
 * Replicate's predictions API at its own paths under `/v1`, so code written with Replicate's
 * official clients runs on the operator's backends with only the base URL changed. A prediction is
 * a canonical job (its id is the run id); `ENDPOINTS` says what each model name stands for.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { config } from "../../config";
import { EaselError, invalid } from "../../errors";
import { jobStub } from "../../jobs/client";
import { endpointRoute } from "../../jobs/endpoints";
import { submitJob } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import { waitForEnd } from "../../jobs/sync-wait";
import { snapshotFor } from "../../jobs/tenant-job";
import type { AppEnv } from "../../middleware/auth";
import { countsTowardRate } from "../../middleware/submit-rate";
import { fileInput } from "./files";
import { predictionPage } from "./list";
import { modelByName, modelByVersion, type ReplicateModel } from "./models";
import { toPrediction, type PredictionData } from "./prediction";
import { replicateApp } from "./problem";
import { ModelPredictionRequestSchema, PredictionRequestSchema, fromReplicate, replicateFields, webhookEvents, type ModelPredictionRequest } from "./translate";

/** `Prefer: wait=n`, in seconds, as Replicate bounds it. */
const WAIT_S = { min: 1, max: 60, default: 60 } as const;
const PAGE = { default: 20, max: 100 } as const;

export const replicatePredictions = replicateApp();

/** Seconds to hold the answer, or undefined when the client did not ask (`Prefer: wait` / `wait=n`). */
export function preferWait(header: string | undefined): number | undefined {
  const pref = header
    ?.split(/[,;]/)
    .map((p) => p.trim())
    .find((p) => /^wait\b/i.test(p));
  if (!pref) return undefined;
  const m = pref.match(/^wait\s*(?:=\s*"?(\d+)"?)?$/i);
  if (!m) throw invalid("Prefer", `expected "wait" or "wait=n" with n from ${WAIT_S.min} to ${WAIT_S.max}`);
  const n = m[1] === undefined ? WAIT_S.default : Number(m[1]);
  if (n < WAIT_S.min || n > WAIT_S.max) throw invalid("Prefer", `wait must be ${WAIT_S.min}–${WAIT_S.max} seconds`);
  return n;
}

const base = (c: Context<AppEnv>): string => config.publicBaseUrl(c.env, c.req.url);

/** `via`: the route it came by, which names the model in errors and reports a deployment. */
async function createPrediction(c: Context<AppEnv>, model: ReplicateModel, body: ModelPredictionRequest, via: "version" | "model" | "deployment") {
  const deployment = via === "deployment" ? model.name : undefined;
  const { env } = c;
  const tenant = c.var.tenant;
  const wait = preferWait(c.req.header("prefer"));
  const { input } = body;
  const image = input.image === undefined || input.workflow_json !== undefined ? undefined : ((await fileInput(env, tenant, base(c), input.image, "input.image")) ?? input.image);
  const req = fromReplicate(input, image);
  const field = req.type === "workflow" ? "input.workflow_json" : req.type === "img2img" ? "input.image" : "input.prompt";
  const route = endpointRoute(env, model.key, req.type, { field, message: `${model.name} does not serve ${req.type} predictions` });
  const data: PredictionData = {
    model: model.name,
    version: model.version,
    input,
    ...(deployment ? { deployment } : {}),
    ...(body.webhook ? { webhook: body.webhook } : {}),
    ...(body.webhook_events_filter ? { webhook_events_filter: body.webhook_events_filter } : {}),
  };
  const { snapshot } = await submitJob(
    env,
    // A graph names its own checkpoints (routing reads its ckpt_name): the model's default is for the other types.
    { ...req, ...route, model: req.type === "workflow" ? undefined : route.model, webhook: body.webhook, webhook_events: webhookEvents(body.webhook_events_filter) },
    { tenant, dialect: "replicate", publicBaseUrl: base(c), fields: { ...replicateFields, model: via }, dialectData: data, rateCounted: c.var.rateCounted },
  );
  c.header("x-easel-run-id", snapshot.job.id);
  // A client that hangs up does not cancel: on Replicate the prediction goes on, and it can be polled.
  const latest = wait === undefined ? snapshot : await waitForEnd(env, snapshot.job.id, tenant, { maxMs: wait * 1000 });
  return c.json(await toPrediction(env, latest, { starting: true }), 201, wait === undefined ? {} : { "preference-applied": `wait=${wait}` });
}

/** The tenant's prediction: another tenant's, or a job of another API, does not exist here. */
async function predictionFor(c: Context<AppEnv>, id: string): Promise<JobSnapshot> {
  const snapshot = await snapshotFor(c.env, id, c.var.tenant);
  if (!snapshot || snapshot.input.dialect !== "replicate") throw new EaselError(404, "not_found", "prediction not found");
  return snapshot;
}

const Prediction = z
  .looseObject({
    id: z.string(),
    model: z.string(),
    version: z.string(),
    status: z.enum(["starting", "processing", "succeeded", "failed", "canceled"]),
    output: z.array(z.string()).nullable(),
    error: z.string().nullable(),
    urls: z.object({ get: z.string(), cancel: z.string() }),
  })
  .openapi("ReplicatePrediction");
const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const Problem = { description: "`application/problem+json` `{title, detail, status}`" };
const tags = ["Replicate"];
const Owner = z.object({ owner: z.string().min(1), name: z.string().min(1) });
const WaitHeader = z.object({ prefer: z.string().optional().openapi({ description: "`wait` or `wait=n` (1–60 s): hold the answer until the prediction ends" }) });
const created = { 201: json(Prediction, "The prediction; `starting` unless it already ended"), 401: Problem, 404: Problem, 422: Problem, 429: Problem };

replicatePredictions.openapi(
  createRoute({ method: "post", path: "/v1/predictions", tags, summary: "Create a prediction of a model version", middleware: [countsTowardRate] as const, request: { headers: WaitHeader, body: { content: { "application/json": { schema: PredictionRequestSchema } }, required: true } }, responses: created }),
  async (c) => {
    const body = c.req.valid("json");
    return createPrediction(c, await modelByVersion(c.env, body.version), body, "version");
  },
);

for (const kind of ["models", "deployments"] as const) {
  replicatePredictions.openapi(
    createRoute({
      method: "post",
      path: `/v1/${kind}/{owner}/{name}/predictions`,
      tags,
      summary: kind === "models" ? "Create a prediction of a model's latest version" : "Create a prediction on a deployment",
      middleware: [countsTowardRate] as const,
      request: { params: Owner, headers: WaitHeader, body: { content: { "application/json": { schema: ModelPredictionRequestSchema } }, required: true } },
      responses: created,
    }),
    async (c) => {
      const { owner, name } = c.req.valid("param");
      return createPrediction(c, await modelByName(c.env, `${owner}/${name}`), c.req.valid("json"), kind === "deployments" ? "deployment" : "model");
    },
  );
}

replicatePredictions.openapi(
  createRoute({ method: "get", path: "/v1/predictions/{id}", tags, summary: "A prediction", request: { params: z.object({ id: z.string() }) }, responses: { 200: json(Prediction, "The prediction"), 401: Problem, 404: Problem } }),
  async (c) => c.json(await toPrediction(c.env, await predictionFor(c, c.req.valid("param").id)), 200),
);

replicatePredictions.openapi(
  createRoute({ method: "post", path: "/v1/predictions/{id}/cancel", tags, summary: "Cancel a prediction; one that ended comes back unchanged", request: { params: z.object({ id: z.string() }) }, responses: { 200: json(Prediction, "The prediction"), 401: Problem, 404: Problem } }),
  async (c) => {
    const { id } = c.req.valid("param");
    await predictionFor(c, id);
    // An ended job refuses the cancel (a conflict): as on Replicate, it is answered as it is.
    await jobStub(c.env, id).cancel(c.var.tenant);
    return c.json(await toPrediction(c.env, await predictionFor(c, id)), 200);
  },
);

replicatePredictions.openapi(
  createRoute({
    method: "get",
    path: "/v1/predictions",
    tags,
    summary: "The tenant's predictions, newest first; follow `next`",
    request: { query: z.object({ cursor: z.string().optional(), limit: z.coerce.number().int().min(1).max(PAGE.max).optional().openapi({ description: `page size (default ${PAGE.default}; Easel's addition)` }) }) },
    responses: { 200: json(z.object({ next: z.string().nullable(), previous: z.string().nullable(), results: z.array(Prediction) }).openapi("ReplicatePredictionPage"), "A page"), 401: Problem, 422: Problem },
  }),
  async (c) => {
    const q = c.req.valid("query");
    const limit = q.limit ?? PAGE.default;
    const page = await predictionPage(c.env, c.var.tenant, { cursor: q.cursor, limit });
    const results = await Promise.all(page.snapshots.map((s) => toPrediction(c.env, s)));
    const next = page.next === null ? null : `${base(c)}/v1/predictions?${new URLSearchParams({ cursor: page.next, ...(q.limit ? { limit: String(q.limit) } : {}) })}`;
    return c.json({ next, previous: null, results }, 200);
  },
);

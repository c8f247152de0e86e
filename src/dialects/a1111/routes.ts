/**
 * AUTOMATIC1111's web API (seeds 003 and 001): synchronous like A1111 itself, basic auth with the
 * API key as the password, errors in FastAPI's and A1111's own shapes.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createApp } from "../../app";
import { config } from "../../config";
import { EaselError, invalid } from "../../errors";
import { submitJob, submitJobs, type IntakeOptions, type IntakeRequest } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import { failureStatus, syncWait, untilItsDeadline } from "../../jobs/sync-wait";
import { tenantAuth, type AppEnv } from "../../middleware/auth";
import { countsTowardRate } from "../../middleware/submit-rate";
import { tenantHome } from "../../tenant-shards";
import { basicOrBearerKey } from "../keys";
import { JSON_HEADERS, jsonWithImages } from "../outputs";
import { OutputImage, outputPlaces } from "../../webhooks/body-slots";
import { ExtrasSingleImageSchema, extrasFields, fromExtras, toExtrasResponse } from "./extras";
import { pngInfo, writtenInfotexts } from "./infotext";
import { a1111List, LISTS, refreshA1111, type ListName } from "./lists";
import { interruptTenant, skipTenant, tenantProgress, whileWaiting } from "./live";
import { methodNotAllowed } from "./methods";
import { A1111OptionsSchema, a1111Models, a1111Options, setA1111Options, withTenantSettings } from "./settings";
import { a1111Errors } from "./errors";
import { A1111RequestSchema, a1111Fields, a1111Parameters, a1111Unauthorized, fromA1111, requestedModel, toA1111Response, type A1111Request } from "./translate";

export const a1111 = createApp();
a1111.use("/sdapi/v1/*", methodNotAllowed(a1111));
a1111.use(
  "/sdapi/v1/*",
  tenantAuth({ key: basicOrBearerKey, onUnauthorized: (c) => c.json(a1111Unauthorized(Boolean(c.req.header("authorization"))), 401, { "www-authenticate": "Basic" }) }),
);
a1111.onError(a1111Errors);

async function generate(c: Context<AppEnv>, type: "txt2img" | "img2img", body: A1111Request) {
  const tenant = c.var.tenant;
  const stored = await tenantHome(c.env, tenant).getOptions();
  const { model, field } = requestedModel(body, stored.sd_model_checkpoint);
  const { snapshot } = await submitJob(c.env, fromA1111(type, withTenantSettings(body, stored), model), {
    tenant,
    dialect: "a1111",
    publicBaseUrl: config.publicBaseUrl(c.env, c.req.url),
    fields: { ...a1111Fields("", body), model: field },
    knownModelsOnly: true,
    emptyPromptOk: true,
    rateCounted: c.var.rateCounted,
  });
  c.header("x-easel-run-id", snapshot.job.id);
  // A1111 answers when the images are made, however long (webuiapi sets no timeout): the job's end.
  const done = await whileWaiting(c.env, tenant, snapshot.job.id, () => syncWait(c, snapshot.job.id, untilItsDeadline(snapshot)));
  // Interrupted (POST interrupt, or a cancel in /v1): A1111 answers 200 with what it made, here nothing.
  if (done.job.status === "canceled") return c.json(toA1111Response(done, [], a1111Parameters(type, body)), 200);
  if (done.job.status !== "succeeded") {
    throw new EaselError(failureStatus(done.job), done.job.error?.code ?? done.job.status, done.job.error?.message ?? `the job is ${done.job.status}`);
  }
  // send_images: false is answered as A1111 answers it, without the images (the job keeps them).
  const images = body.send_images === false ? [] : await outputPlaces(done);
  const answer = toA1111Response(done, images, a1111Parameters(type, body), await writtenInfotexts(c.env, done.output_keys));
  return c.body(await jsonWithImages(c.env, done.output_keys, answer), 200, JSON_HEADERS);
}

/** One upscale job per image, waited on like txt2img; all are checked and admitted before any is made (src/jobs/intake.ts). */
async function upscales(c: Context<AppEnv>, requests: { req: IntakeRequest; fields: IntakeOptions["fields"] }[]): Promise<JobSnapshot[]> {
  const tenant = c.var.tenant;
  const snapshots = await submitJobs(c.env, requests, { tenant, dialect: "a1111", publicBaseUrl: config.publicBaseUrl(c.env, c.req.url), rateCounted: c.var.rateCounted });
  const ids = snapshots.map((s) => s.job.id);
  c.header("x-easel-run-id", ids.join(", "));
  const done = await Promise.all(snapshots.map((s) => whileWaiting(c.env, tenant, s.job.id, () => syncWait(c, s.job.id, untilItsDeadline(s)))));
  const failed = done.find((d) => d.job.status !== "succeeded");
  if (failed) throw new EaselError(failureStatus(failed.job), failed.job.error?.code ?? failed.job.status, failed.job.error?.message ?? `the job is ${failed.job.status}`);
  return done;
}

const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const A1111Response = z.object({ images: z.array(z.string()), parameters: z.record(z.string(), z.unknown()), info: z.string() }).openapi("A1111Response");
const Failure = { description: "FastAPI's `{detail}` for a 422; A1111's `{error, detail, body, errors}` otherwise" };

for (const type of ["txt2img", "img2img"] as const) {
  a1111.openapi(
    createRoute({
      method: "post",
      path: `/sdapi/v1/${type}`,
      tags: ["AUTOMATIC1111"],
      summary: `${type}, answered when the images are ready`,
      middleware: [countsTowardRate] as const,
      request: { body: { content: { "application/json": { schema: A1111RequestSchema } }, required: true } },
      responses: { 200: json(A1111Response, "The images, the request echoed, and `info` (a JSON string)"), 422: Failure, 502: Failure },
    }),
    (c) => generate(c, type, c.req.valid("json")),
  );
}

a1111.openapi(
  createRoute({ method: "get", path: "/sdapi/v1/sd-models", tags: ["AUTOMATIC1111"], summary: "Models across backends", responses: { 200: { description: "`[{title, model_name, hash, sha256, filename, config}]`" } } }),
  async (c) => c.json(await a1111Models(c.env), 200),
);

a1111.openapi(
  createRoute({ method: "get", path: "/sdapi/v1/options", tags: ["AUTOMATIC1111"], summary: "The tenant's options", responses: { 200: json(A1111OptionsSchema, "The options") } }),
  async (c) => c.json(await a1111Options(c.env, c.var.tenant), 200),
);

a1111.openapi(
  createRoute({
    method: "post",
    path: "/sdapi/v1/options",
    tags: ["AUTOMATIC1111"],
    summary: "Set the tenant's options; `sd_model_checkpoint` is its default model",
    request: { body: { content: { "application/json": { schema: A1111OptionsSchema } }, required: true } },
    responses: { 200: { description: "Saved (`null`, as A1111 answers)" }, 422: Failure },
  }),
  async (c) => {
    await setA1111Options(c.env, c.var.tenant, c.req.valid("json"), "sd_model_checkpoint");
    return c.json(null, 200);
  },
);

/** How many images one extra-batch-images call may upscale (each is its own job, counted against the tenant's limits). */
const MAX_BATCH_IMAGES = 16;
const ExtrasBatchImagesSchema = ExtrasSingleImageSchema.omit({ image: true })
  .extend({ imageList: z.array(z.looseObject({ data: z.string().min(1), name: z.string().optional() })).min(1).max(MAX_BATCH_IMAGES) })
  .openapi("ExtrasBatchImagesRequest");

a1111.openapi(
  createRoute({
    method: "post",
    path: "/sdapi/v1/extra-single-image",
    tags: ["AUTOMATIC1111"],
    summary: "Upscale one image (a canonical upscale job), answered when it is ready",
    middleware: [countsTowardRate] as const,
    request: { body: { content: { "application/json": { schema: ExtrasSingleImageSchema } }, required: true } },
    responses: { 200: json(z.object({ html_info: z.string(), image: z.string() }).openapi("ExtrasSingleImageResponse"), "The upscaled PNG, base64"), 422: Failure, 502: Failure },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const [done] = await upscales(c, [{ req: fromExtras(body), fields: extrasFields() }]);
    if (!done) throw new EaselError(502, "backend_failed", "no upscale ran");
    return c.body(await jsonWithImages(c.env, done.output_keys, toExtrasResponse(done, await outputPlaces(done))), 200, JSON_HEADERS);
  },
);

a1111.openapi(
  createRoute({
    method: "post",
    path: "/sdapi/v1/extra-batch-images",
    tags: ["AUTOMATIC1111"],
    summary: `Upscale up to ${MAX_BATCH_IMAGES} images (one canonical upscale job each), answered when all are ready`,
    middleware: [countsTowardRate] as const,
    request: { body: { content: { "application/json": { schema: ExtrasBatchImagesSchema } }, required: true } },
    responses: { 200: json(z.object({ html_info: z.string(), images: z.array(z.string()) }).openapi("ExtrasBatchImagesResponse"), "The upscaled PNGs, base64, in the order sent"), 422: Failure, 502: Failure },
  }),
  async (c) => {
    const { imageList, ...rest } = c.req.valid("json");
    const done = await upscales(
      c,
      imageList.map((item, i) => ({ req: fromExtras({ ...rest, image: item.data }), fields: { ...extrasFields(), init_image: `imageList.${i}.data` } })),
    );
    // One job per image: the answer's places are each job's one output, in the order sent.
    const keys = done.map((d) => d.output_keys[0] ?? "");
    const images = keys.map((_k, i) => new OutputImage(i));
    return c.body(await jsonWithImages(c.env, keys, { html_info: done[0] ? toExtrasResponse(done[0], []).html_info : "", images }), 200, JSON_HEADERS);
  },
);

const ProgressSchema = z
  .object({
    progress: z.number(),
    eta_relative: z.number(),
    state: z.object({ skipped: z.boolean(), interrupted: z.boolean(), stopping_generation: z.boolean(), job: z.string(), job_count: z.number().int(), job_timestamp: z.string(), job_no: z.number().int(), sampling_step: z.number().int(), sampling_steps: z.number().int() }),
    current_image: z.string().nullable(),
    textinfo: z.string().nullable(),
  })
  .openapi("A1111Progress");

a1111.openapi(
  createRoute({
    method: "get",
    path: "/sdapi/v1/progress",
    tags: ["AUTOMATIC1111"],
    summary: "Live progress of the caller's running A1111 calls (zeros when idle)",
    request: { query: z.object({ skip_current_image: z.enum(["true", "false", "True", "False", "1", "0"]).optional() }) },
    responses: { 200: json(ProgressSchema, "A1111's progress: live figures from the backend running the call") },
  }),
  async (c) => {
    const skip = ["true", "True", "1"].includes(c.req.valid("query").skip_current_image ?? "false");
    return c.json(await tenantProgress(c.env, c.var.tenant, skip), 200);
  },
);

a1111.openapi(
  createRoute({ method: "post", path: "/sdapi/v1/interrupt", tags: ["AUTOMATIC1111"], summary: "Stop the caller's running A1111 calls; each answers at once", responses: { 200: { description: "`{}`, as A1111 answers" } } }),
  async (c) => {
    await interruptTenant(c.env, c.var.tenant);
    return c.json({}, 200);
  },
);

a1111.openapi(
  createRoute({ method: "post", path: "/sdapi/v1/skip", tags: ["AUTOMATIC1111"], summary: "Skip the batch being sampled in the caller's running A1111 calls", responses: { 200: { description: "`null`, as A1111 answers" } } }),
  async (c) => {
    await skipTenant(c.env, c.var.tenant);
    return c.json(null, 200);
  },
);

const PngInfoRequest = z.looseObject({ image: z.string().min(1) }).openapi("A1111PngInfoRequest");
const PngInfoResponse = z.object({ info: z.string(), items: z.record(z.string(), z.string()), parameters: z.record(z.string(), z.union([z.string(), z.number()])) }).openapi("A1111PngInfoResponse");

a1111.openapi(
  createRoute({
    method: "post",
    path: "/sdapi/v1/png-info",
    tags: ["AUTOMATIC1111"],
    summary: "Read a PNG's text chunks: its infotext and the fields in it",
    request: { body: { content: { "application/json": { schema: PngInfoRequest } }, required: true } },
    responses: { 200: json(PngInfoResponse, "`info` is the `parameters` chunk, `items` the other chunks, `parameters` the infotext's fields"), 422: Failure },
  }),
  async (c) => {
    const info = await pngInfo(c.req.valid("json").image);
    if (!info) throw invalid("image", "not base64");
    return c.json(info, 200);
  },
);

for (const name of Object.keys(LISTS) as ListName[]) {
  a1111.openapi(
    createRoute({ method: "get", path: `/sdapi/v1/${name}`, tags: ["AUTOMATIC1111"], summary: `${name} across the A1111 backends`, responses: { 200: { description: "A1111's own shape, merged across backends" } } }),
    async (c) => c.json(await a1111List(c.env, name), 200),
  );
}

// Easel picks the checkpoint per request, so there is nothing to unload or reload, and a shared
// backend's loaded model is not one tenant's to drop: answered as A1111 does, nothing forwarded.
for (const what of ["unload", "reload"] as const) {
  a1111.openapi(
    createRoute({ method: "post", path: `/sdapi/v1/${what}-checkpoint`, tags: ["AUTOMATIC1111"], summary: `Accepted (\`{}\`); the model is chosen per request`, responses: { 200: { description: "`{}`, as A1111 answers" } } }),
    (c) => c.json({}, 200),
  );
}

for (const what of ["checkpoints", "loras"] as const) {
  a1111.openapi(
    createRoute({ method: "post", path: `/sdapi/v1/refresh-${what}`, tags: ["AUTOMATIC1111"], summary: `Rescan ${what} on the A1111 backends and read the lists afresh`, responses: { 200: { description: "`null`, as A1111 answers" } } }),
    async (c) => {
      await refreshA1111(c.env, what);
      return c.json(null, 200);
    },
  );
}

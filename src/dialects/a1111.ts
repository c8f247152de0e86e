/**
 * AUTOMATIC1111's web API (seeds 003 and 001): synchronous like A1111 itself, basic auth with the
 * API key as the password, errors in FastAPI's and A1111's own shapes.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createApp, errorsAs } from "../app";
import type { Env } from "../env";
import { tenantStub } from "../tenants";
import type { EaselError } from "../errors";
import { submitJob, type IntakeRequest } from "../jobs/intake";
import type { JobSnapshot } from "../jobs/results";
import { bearerKey, tenantAuth, type AppEnv } from "../middleware/auth";
import { basicPassword, cachedModels, outputsBase64, publicBase, requireKnownModel, waitForEnd } from "./shared";


export const A1111RequestSchema = z
  .looseObject({
    prompt: z.string().default(""),
    negative_prompt: z.string().optional(),
    steps: z.number().int().optional(),
    cfg_scale: z.number().optional(),
    width: z.number().int().optional(),
    height: z.number().int().optional(),
    batch_size: z.number().int().min(1).optional(),
    n_iter: z.number().int().min(1).optional(),
    seed: z.number().int().optional(),
    sampler_name: z.string().optional(),
    sampler_index: z.string().optional(),
    denoising_strength: z.number().optional(),
    init_images: z.array(z.string()).optional(),
    override_settings: z.record(z.string(), z.unknown()).optional(),
    alwayson_scripts: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi("A1111Request");
export type A1111Request = z.infer<typeof A1111RequestSchema>;

/** A1111's field names for the canonical ones, so a 422 names what the client sent. */
export const A1111_FIELDS = {
  init_image: "init_images.0",
  strength: "denoising_strength",
  guidance_scale: "cfg_scale",
  samples: "batch_size",
  model: "override_settings.sd_model_checkpoint",
} as const;

const MAPPED = new Set(["prompt", "negative_prompt", "steps", "cfg_scale", "width", "height", "batch_size", "n_iter", "seed", "sampler_name", "sampler_index", "denoising_strength", "init_images"]);

/** The model an A1111 request asks for, in the order A1111 itself applies them. */
export function requestedModel(body: A1111Request, tenantDefault: unknown): string | undefined {
  const pick = (v: unknown) => (typeof v === "string" && v ? v : undefined);
  return pick(body.override_settings?.sd_model_checkpoint) ?? pick(body.alwayson_scripts?.sd_model_checkpoint) ?? pick(tenantDefault);
}

/** An A1111 payload as a canonical request; fields Easel does not model pass through to the backend. */
export function fromA1111(type: "txt2img" | "img2img", body: A1111Request, model: string | undefined): IntakeRequest {
  const extra = Object.fromEntries(Object.entries(body).filter(([k]) => !MAPPED.has(k)));
  return {
    type,
    prompt: body.prompt,
    negative_prompt: body.negative_prompt,
    init_image: type === "img2img" ? body.init_images?.[0] : undefined,
    strength: body.denoising_strength,
    steps: body.steps,
    guidance_scale: body.cfg_scale,
    width: body.width,
    height: body.height,
    samples: (body.batch_size ?? 1) * (body.n_iter ?? 1),
    seed: body.seed === undefined || body.seed === -1 ? undefined : body.seed,
    sampler: body.sampler_name ?? body.sampler_index,
    model,
    a1111_extra: extra,
  };
}

/** A1111's answer: images, the request echoed, and `info` as the JSON string A1111 writes. */
export function toA1111Response(snapshot: JobSnapshot, images: string[], parameters: unknown) {
  const { spec } = snapshot.input;
  const seeds = snapshot.job.output.map((o) => o.seed);
  const info = {
    prompt: spec.prompt,
    all_prompts: seeds.map(() => spec.prompt),
    negative_prompt: spec.negative_prompt,
    all_negative_prompts: seeds.map(() => spec.negative_prompt),
    seed: spec.seed,
    all_seeds: seeds,
    subseed: -1,
    all_subseeds: seeds.map(() => -1),
    width: spec.width,
    height: spec.height,
    sampler_name: spec.sampler ?? null,
    cfg_scale: spec.guidance_scale,
    steps: spec.steps,
    batch_size: spec.samples,
    n_iter: 1,
    sd_model_name: spec.model ?? null,
    denoising_strength: spec.type === "img2img" ? spec.strength : null,
    infotexts: seeds.map((s) => `${spec.prompt}\nSteps: ${spec.steps}, Sampler: ${spec.sampler ?? "default"}, CFG scale: ${spec.guidance_scale}, Seed: ${s}, Size: ${spec.width}x${spec.height}`),
    job_id: snapshot.job.id,
  };
  return { images, parameters, info: JSON.stringify(info) };
}

/** Errors as A1111 gives them: FastAPI's `detail` list for validation, its envelope otherwise. */
export function a1111Error(err: EaselError) {
  if (err.status === 422) {
    return { detail: (err.details ?? [{ path: "body", message: err.message }]).map((d) => ({ loc: ["body", ...d.path.split(".")], msg: d.message, type: "value_error" })) };
  }
  if (err.status === 401) return { detail: "Not authenticated" };
  return { error: err.code, detail: "", body: "", errors: err.message };
}

export const a1111 = createApp();
a1111.use("/sdapi/v1/*", tenantAuth({ key: (c) => basicPassword(c) ?? bearerKey(c) }));
a1111.onError(errorsAs(a1111Error, (e) => (e.status === 401 ? { "www-authenticate": 'Basic realm="easel"' } : undefined)));

async function generate(c: Context<AppEnv>, type: "txt2img" | "img2img", body: A1111Request) {
  const tenant = c.var.tenant;
  const model = requestedModel(body, (await tenantStub(c.env, tenant).getOptions()).sd_model_checkpoint);
  await requireKnownModel(c.env, model, A1111_FIELDS.model);
  const { snapshot } = await submitJob(c.env, fromA1111(type, body, model), { tenant, dialect: "a1111", publicBaseUrl: publicBase(c), fields: A1111_FIELDS });
  const done = await waitForEnd(c.env, snapshot.job.id, tenant, c.req.raw.signal);
  c.header("x-easel-run-id", done.job.id);
  if (done.job.status !== "succeeded") {
    return c.json({ error: done.job.error?.code ?? done.job.status, detail: "", body: "", errors: done.job.error?.message ?? `the job was ${done.job.status}` }, 500);
  }
  return c.json(toA1111Response(done, await outputsBase64(c.env, done), body), 200);
}

const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const Generated = z.object({ images: z.array(z.string()), parameters: z.record(z.string(), z.unknown()), info: z.string() }).openapi("A1111Response");

for (const type of ["txt2img", "img2img"] as const) {
  a1111.openapi(
    createRoute({
      method: "post",
      path: `/sdapi/v1/${type}`,
      tags: ["AUTOMATIC1111"],
      summary: `A1111 ${type}, synchronous`,
      request: { body: { content: { "application/json": { schema: A1111RequestSchema } }, required: true } },
      responses: { 200: json(Generated, "The images"), 422: { description: "Invalid request (FastAPI shape)" } },
    }),
    (c) => generate(c, type, c.req.valid("json")),
  );
}

a1111.openapi(
  createRoute({ method: "get", path: "/sdapi/v1/sd-models", tags: ["AUTOMATIC1111"], summary: "Models across backends", responses: { 200: { description: "A1111's model list" } } }),
  async (c) => c.json((await cachedModels(c.env)).map(({ model: { title, model_name, hash, sha256, filename, config } }) => ({ title, model_name, hash, sha256, filename, config })), 200),
);

a1111.openapi(
  createRoute({ method: "get", path: "/sdapi/v1/options", tags: ["AUTOMATIC1111"], summary: "The tenant's options", responses: { 200: { description: "Options" } } }),
  async (c) => {
    const stored = await tenantStub(c.env, c.var.tenant).getOptions();
    const first = (await cachedModels(c.env))[0]?.model.title ?? null;
    return c.json({ samples_format: "png", ...stored, sd_model_checkpoint: stored.sd_model_checkpoint ?? first }, 200);
  },
);

a1111.openapi(
  createRoute({
    method: "post",
    path: "/sdapi/v1/options",
    tags: ["AUTOMATIC1111"],
    summary: "Set the tenant's default model",
    request: { body: { content: { "application/json": { schema: z.looseObject({ sd_model_checkpoint: z.string().min(1).optional() }) } }, required: true } },
    responses: { 200: { description: "Saved" }, 422: { description: "Unknown model" } },
  }),
  async (c) => {
    const body = c.req.valid("json");
    await requireKnownModel(c.env, body.sd_model_checkpoint, "sd_model_checkpoint");
    await tenantStub(c.env, c.var.tenant).setOptions(body);
    return c.json(null, 200);
  },
);

a1111.openapi(
  createRoute({ method: "get", path: "/sdapi/v1/samplers", tags: ["AUTOMATIC1111"], summary: "Samplers", responses: { 200: { description: "Sampler list" } } }),
  (c) => c.json(["Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ SDE Karras", "DDIM"].map((name) => ({ name, aliases: [], options: {} })), 200),
);

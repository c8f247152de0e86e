import { IDEMPOTENCY_TTL_MS } from "../contracts/tenant";
import { fittingBackends } from "../backends/models";
import { badConfig, config, type BackendConfig, type JobType } from "../config";
import type { Env } from "../env";
import { EaselError, invalid } from "../errors";
import { canonicalJson, sha256Hex } from "../lib/crypto";
import { readImageInput } from "../lib/image-input";
import { checkImage } from "../lib/image-check";
import { checkOutboundUrl } from "../lib/url-guard";
import type { z } from "@hono/zod-openapi";
import { DEFAULT_TIMEOUT_S, EmptyPromptLimitsSchema, GenerationLimitsSchema, MAX_UPSCALED_SIDE, type WebhookEventType } from "../schemas/job";
import { chosenOutputPrefix, defaultOutputPrefix, inputImageKey, inputKey, putImage } from "../storage/images";
import { storePassThrough } from "./pass-through";
import { MAX_PASS_THROUGH_IMAGE_BYTES, readPassThroughImages } from "./pass-through-images";
import { ownOutputs } from "../storage/own-links";
import type { S3Output } from "../storage/s3-output";
import { hasActiveLimit, indexObject } from "../tenant-shards";
import { claimKey, releaseKey } from "./claims";
import { isOk, jobStub } from "./client";
import { admitJob, checkRate } from "./limits";
import { requireKnownModel } from "./models";
import type { JobSnapshot } from "./results";
import { mintRunId } from "./run-id";
import { backendsTaking, requestBytes } from "./request-size";
import { base64Length } from "../lib/base64";
import { sizeFromImage, type SizeFromImage } from "./init-image-size";
import { DEFAULTS, DEFAULT_WEBHOOK_EVENTS, type BackendCredentials, type Dialect, type GenerationSpec, type Workflow } from "./spec";
import { checkImageNames, checkLoadedFiles, checkedWorkflow, readInputImages, type InputImage } from "./workflow-inputs";
import { workflowBackends } from "./workflow-routing";

export const MAX_INIT_IMAGE_BYTES = 10 * 1024 * 1024;

/** A generation request as each dialect hands it over, before defaults and storage. */
export interface IntakeRequest {
  type: JobType;
  /** Required for generations; an upscale has none. */
  prompt?: string;
  negative_prompt?: string;
  /** An https URL, a data URI or raw base64; or bytes a dialect already fetched. The source image of an upscale. */
  init_image?: string | Uint8Array;
  /** Upscale: by this factor, or to `width` x `height`. */
  scale?: number;
  upscaler?: string;
  strength?: number;
  steps?: number;
  guidance_scale?: number;
  width?: number;
  height?: number;
  /** img2img: the output's size read from the init image by this rule (`width`/`height` then unused). */
  size_from_image?: SizeFromImage;
  samples?: number;
  seed?: number;
  sampler?: string;
  model?: string;
  backend?: string;
  /** `backend` is an `ENDPOINTS` pin: it runs the job whatever its `models` list says. */
  pin_overrides_models?: boolean;
  webhook?: string;
  webhook_events?: WebhookEventType[];
  track_id?: string;
  timeout_s?: number;
  /** Seconds the job may run once started (see CreateJobSchema). */
  run_timeout_s?: number;
  a1111_extra?: Record<string, unknown>;
  /** A `workflow` job's ComfyUI `extra_data`, sent to the backend with the graph. */
  extra_data?: Record<string, unknown>;
  /** Sent to the backend with the job, never stored with it (see CreateJob's `credentials`). */
  credentials?: BackendCredentials;
  /** A `workflow` job's ComfyUI API-format graph, as the client sent it (checked here). */
  workflow?: unknown;
  /** A `workflow` job's input images, under the names its graph loads them by. */
  images?: { name: string; image: string | Uint8Array }[];
}

export interface IntakeOptions {
  tenant: string;
  dialect: Dialect;
  publicBaseUrl: string;
  dialectData?: Record<string, unknown>;
  /** How this dialect names the fields that errors point at (canonical name → the dialect's). */
  fields?: Partial<Record<"init_image" | "webhook" | "model" | "backend" | "sampler" | "workflow" | "images" | keyof z.infer<typeof GenerationLimitsSchema>, string>> & {
    /** Where the request's pass-through fields (`a1111_extra`) sit in the dialect's body, as a path prefix (`input.` for RunPod). */
    pass_through?: string;
  };
  /** Reuse a job for the same key and body (the `Idempotency-Key` header); `body` is compared as JSON. */
  idempotency?: { key: string; body: unknown };
  /** A run id chosen beforehand (dialects that must name the job before it exists). */
  runId?: string;
  /** A place the client chose for the outputs (an SD-on-EKS location), kept under the tenant's root; defaults to `outputs/<run id>`. */
  outputLocation?: string;
  /** Also write the outputs (and the dialect's manifest) to this S3 location. */
  s3Output?: S3Output;
  /** Refuse a model no backend lists (src/jobs/models.ts), as A1111 does; a pin that overrides the lists is exempt. */
  knownModelsOnly?: boolean;
  /** The `JOB_SUBSCRIBERS` object to tell of the job's events. */
  subscriber?: string;
  /** The route counted this request against the tenant's rate_limit already (`countsTowardRate`). */
  rateCounted?: boolean;
  /** An empty prompt is a prompt (A1111's payloads: A1111 generates from one); elsewhere it is a 422. */
  emptyPromptOk?: boolean;
}

const randomSeed = (): number => crypto.getRandomValues(new Uint32Array(1))[0] ?? 0;

/** A request intake checked, with what it read for it: all its job needs but a run id. */
interface CheckedJob {
  req: IntakeRequest;
  webhook: string | undefined;
  image: Uint8Array | undefined;
  size: { width: number; height: number };
  workflow: { graph: Workflow; backends: string[] | undefined } | undefined;
  inputImages: InputImage[];
  /** The backends that may run it, when not every one that fits: a workflow's checkpoints, or its request's size, narrowed them. */
  backends: string[] | undefined;
}
type CheckedRun = CheckedJob & { runId: string };
type Made = { snapshot: JobSnapshot; created: boolean };

/**
 * The one way a job is born, whatever API it came through: checks what only the gateway can
 * check (backends, URLs, the image), stores the init image in R2 and creates the job object.
 */
export async function submitJob(env: Env, req: IntakeRequest, opts: IntakeOptions): Promise<Made> {
  // Before anything else: a tenant over its rate gets nothing, not even its request checked
  // (a route that counted it before its validators said so).
  if (!opts.rateCounted) await checkRate(env, opts.tenant);
  const checked = await checkJob(env, req, opts);

  let runId = opts.runId ?? (await mintRunId(env));
  let claimedKey: string | undefined;
  if (opts.idempotency) {
    const hash = await sha256Hex(canonicalJson(opts.idempotency.body));
    const claim = await claimKey(env, opts.tenant, "idempotency", opts.idempotency.key, hash, runId, IDEMPOTENCY_TTL_MS);
    if (claim.status === "conflict") throw new EaselError(409, "idempotency_conflict", "this Idempotency-Key was used with a different request body");
    if (claim.status === "claimed") claimedKey = opts.idempotency.key;
    if (claim.status === "existing") {
      const found = await jobStub(env, claim.runId).get(opts.tenant, { full: true });
      if (isOk(found)) return { snapshot: found.snapshot, created: false };
      // The first request is still being taken in: finish creating the same job.
      runId = claim.runId;
    }
  }

  // Refused by a limit: the key this request claimed is free again for its retry, whatever its body.
  const refused = async () => {
    if (claimedKey) await releaseKey(env, opts.tenant, "idempotency", claimedKey, runId);
  };
  const [made] = await enterJobs(env, [{ ...checked, runId }], opts, refused);
  if (!made) throw new Error("intake made no job for one request");
  return made;
}

/**
 * The jobs of one request that makes several (A1111's extra-batch-images, one per image), each
 * with the names its errors point at: every one is checked, its image read, before any is made,
 * and `max_active_jobs` admits them together. A refusal of any leaves no job, webhook or GPU call.
 */
export async function submitJobs(env: Env, items: { req: IntakeRequest; fields: IntakeOptions["fields"] }[], opts: Omit<IntakeOptions, "fields" | "idempotency" | "runId">): Promise<JobSnapshot[]> {
  if (!opts.rateCounted) await checkRate(env, opts.tenant);
  const checks = await Promise.allSettled(items.map(({ req, fields }) => checkJob(env, req, { ...opts, fields })));
  // The first bad item in the order sent is the one named, however the checks finished.
  const bad = checks.find((r) => r.status === "rejected");
  if (bad) throw bad.reason;
  const checked = checks.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const runs = await Promise.all(checked.map(async (job) => ({ ...job, runId: await mintRunId(env) })));
  return (await enterJobs(env, runs, opts)).map((m) => m.snapshot);
}

/** Everything intake checks before anything is stored; it reads the image, and writes nothing. */
async function checkJob(env: Env, sent: IntakeRequest, opts: IntakeOptions): Promise<CheckedJob> {
  let req = sent;
  // A job must know when it will be deleted and when its webhooks are tried again: a bad
  // RETENTION_S or WEBHOOK_RETRY_SCHEDULE refuses it (a 500 naming the variable), not its webhook later.
  config.retentionMs(env);
  config.retrySchedule(env);
  const fields = { init_image: "init_image", webhook: "webhook", model: "model", backend: "backend", sampler: "sampler", workflow: "workflow", images: "images", ...opts.fields };
  const limits = (opts.emptyPromptOk ? EmptyPromptLimitsSchema : GenerationLimitsSchema).safeParse(req);
  if (!limits.success) {
    const details = limits.error.issues.map((i) => {
      const name = String(i.path[0] ?? "");
      return { path: [opts.fields?.[name as keyof typeof fields] ?? name, ...i.path.slice(1).map(String)].join("."), message: i.message };
    });
    throw new EaselError(422, "validation_failed", details.map((d) => `${d.path}: ${d.message}`).join("; "), details);
  }
  // Before the backends' lists are matched: "unknown model" says more than "no backend serves it".
  if (opts.knownModelsOnly && !req.pin_overrides_models) await requireKnownModel(env, req.model, fields.model);
  const backends = config.backends(env);
  if (req.backend && !backends.some((b) => b.name === req.backend)) throw invalid(fields.backend, `unknown backend "${req.backend}"`);
  let workflow: { graph: Workflow; backends: string[] | undefined } | undefined;
  let candidates: BackendConfig[];
  if (req.type === "workflow") {
    if (req.workflow === undefined) throw invalid(fields.workflow, "required when type is workflow");
    const graph = checkedWorkflow(req.workflow, fields.workflow);
    if (req.images) checkImageNames(req.images, fields.images);
    checkLoadedFiles(graph, new Set(req.images?.map((i) => i.name)), fields.workflow);
    const fits = await workflowBackends(env, backends, graph, req.backend, fields.workflow);
    // Kept only when the graph's checkpoints narrowed the choice: the runner fails over among these.
    const all = backends.filter((b) => b.types.includes("workflow") && (!req.backend || b.name === req.backend));
    workflow = { graph, backends: fits.length < all.length ? fits.map((b) => b.name) : undefined };
    candidates = fits;
  } else if (req.workflow !== undefined || req.images !== undefined) {
    throw invalid(req.workflow !== undefined ? fields.workflow : fields.images, "only for type workflow");
  } else if (!(candidates = fittingBackends(backends, { ...req, pinOverridesModels: req.pin_overrides_models })).length) {
    // Only ComfyUI backends would serve it, and ComfyUI has no sampler like the one asked for.
    if (fittingBackends(backends, { ...req, sampler: undefined, pinOverridesModels: req.pin_overrides_models }).length) {
      throw invalid(fields.sampler, `"${req.sampler}" has no ComfyUI equivalent, and only ComfyUI backends serve this job`);
    }
    throw req.model
      ? invalid(fields.model, `no backend serves model "${req.model}" for ${req.type}`)
      : invalid(fields.backend, `no backend serves ${req.type}`);
  }
  const allowPrivate = config.allowPrivateUrls(env);
  const webhook = req.webhook ?? config.tenant(env, opts.tenant)?.default_webhook;
  if (webhook) {
    const checked = checkOutboundUrl(webhook, { allowPrivate });
    // The tenant's default_webhook is the operator's, not the request's: a 500 naming it, not a 422 on a field never sent.
    if (!checked.ok) throw req.webhook === undefined ? badConfig("TENANTS", `${opts.tenant}.default_webhook: ${checked.reason}`) : invalid(fields.webhook, checked.reason);
  }

  // The image is read and checked before the Idempotency-Key is claimed: a request refused for its
  // image must leave the key free for the corrected one.
  let image: Uint8Array | undefined;
  let size = { width: req.width ?? DEFAULTS.width, height: req.height ?? DEFAULTS.height };
  if (req.type === "img2img" || req.type === "upscale") {
    if (req.init_image === undefined) throw invalid(fields.init_image, `required when type is ${req.type}`);
    image =
      typeof req.init_image === "string"
        ? (await readImageInput(req.init_image, { field: fields.init_image, allowPrivate, maxBytes: MAX_INIT_IMAGE_BYTES, local: ownOutputs(env, opts.publicBaseUrl) })).bytes
        : req.init_image;
    if (image.byteLength > MAX_INIT_IMAGE_BYTES) {
      throw new EaselError(422, "image_too_large", `${fields.init_image}: image is over ${MAX_INIT_IMAGE_BYTES} bytes`, [{ path: fields.init_image, message: "image is over 10 MiB" }]);
    }
    const checked = checkImage(image);
    if (!checked.ok) throw new EaselError(422, checked.code, `${fields.init_image}: ${checked.message}`, [{ path: fields.init_image, message: checked.message }]);
    const sniffed = checked.image;
    if (req.type === "upscale") size = upscaledSize(sniffed, req, fields);
    if (req.type === "img2img" && req.size_from_image) size = sizeFromImage(sniffed, req.size_from_image);
  }
  // A mask or a ControlNet unit's image: A1111 would fetch a URL there itself, so the gateway reads
  // each as it reads the init image; a URL goes on as its base64, never more than a body could carry.
  const local = ownOutputs(env, opts.publicBaseUrl);
  const a1111_extra = await readPassThroughImages(req.a1111_extra, { under: fields.pass_through ?? "", allowPrivate, maxBytes: MAX_INIT_IMAGE_BYTES, maxTotalBytes: MAX_PASS_THROUGH_IMAGE_BYTES, local });
  if (a1111_extra !== req.a1111_extra) req = { ...req, a1111_extra };
  const inputImages = req.images ? await readInputImages(req.images, { field: fields.images, allowPrivate, maxBytes: MAX_INIT_IMAGE_BYTES, local }) : [];
  // Its images travel in the backend's request: only backends that take one that large run it.
  const images = [image?.byteLength ?? 0, ...inputImages.map((i) => i.bytes.byteLength)];
  const json = (v: unknown) => JSON.stringify(v ?? null).length;
  const bytes = () => requestBytes(images, () => json(req.prompt) + json(req.negative_prompt) + json(workflow?.graph) + json(req.a1111_extra));
  const taking = backendsTaking(candidates, bytes, () => largestPart(req, images, workflow?.graph, fields));
  return { req, webhook, image, size, workflow, inputImages, backends: taking ?? workflow?.backends };
}

/** The field a request too large for its backends is named by: its largest part (an image, a pass-through field, the graph). */
function largestPart(req: IntakeRequest, images: number[], graph: Workflow | undefined, fields: Record<string, string | undefined>): string {
  const parts: [string, number][] = [
    [(req.type === "workflow" ? fields.images : fields.init_image) ?? "init_image", base64Length(images.reduce((a, b) => a + b, 0))],
    [fields.workflow ?? "workflow", graph ? JSON.stringify(graph).length : 0],
    ...Object.entries(req.a1111_extra ?? {}).map(([key, value]): [string, number] => [`${fields.pass_through ?? ""}${key}`, JSON.stringify(value ?? null).length]),
  ];
  return parts.reduce((a, b) => (b[1] > a[1] ? b : a))[0];
}

/**
 * Enters checked jobs in the tenant's index (past this point each exists for the tenant, or is
 * forgotten) and creates them. All or none: a limit refusing them leaves none (`refused` frees what
 * the caller claimed), and one that fails to be created takes the others with it.
 */
async function enterJobs(env: Env, runs: CheckedRun[], opts: IntakeOptions, refused?: () => Promise<void>): Promise<Made[]> {
  const created_at = Date.now();
  const rowOf = (run: CheckedRun) => ({ id: run.runId, created_at, status: "queued" as const, type: run.req.type, track_id: run.req.track_id ?? null });
  const create = async (run: CheckedRun, indexed: Promise<unknown>) => {
    try {
      return await createJob(env, opts, { ...run, created_at });
    } catch (err) {
      // Nothing half-created: a job that could not be created leaves the index again (once it is in).
      await indexed.catch(() => undefined);
      await indexObject(env, opts.tenant, run.runId).forget(run.runId).catch(() => undefined);
      throw err;
    }
  };
  let made: PromiseSettledResult<Made>[];
  if (!hasActiveLimit(env, opts.tenant)) {
    // Nothing can refuse the jobs, so each index row is written beside its job's creation rather
    // than before it (one round trip less). A row that failed to be written comes with the job's end report.
    made = await Promise.allSettled(
      runs.map(async (run) => {
        const row = rowOf(run);
        const indexed = admitJob(env, opts.tenant, row).catch((err: unknown) => console.error("job index entry failed; the job's end report adds it", err instanceof Error ? err.message : String(err)));
        const [job] = await Promise.all([create(run, indexed), indexed]);
        return job;
      }),
    );
  } else {
    await admitJob(env, opts.tenant, runs.map(rowOf)).catch(async (err: unknown) => {
      await refused?.();
      throw err;
    });
    made = await Promise.allSettled(runs.map((run) => create(run, Promise.resolve())));
  }
  const failed = made.find((r) => r.status === "rejected");
  if (failed) {
    await Promise.all(made.map((r) => (r.status === "fulfilled" ? jobStub(env, r.value.snapshot.job.id).cancel(opts.tenant).catch(() => undefined) : undefined)));
    throw failed.reason;
  }
  return made.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
}

/** Stores what the job needs in R2 and creates its object. */
async function createJob(env: Env, opts: IntakeOptions, made: CheckedRun & { created_at: number }): Promise<Made> {
  const { req, runId, created_at, webhook, image, size, workflow } = made;
  const init_image_key = image ? (await putImage(env.IMAGES, inputKey(runId), image)).key : undefined;
  // Stored under their place in the list, never their names: a name is the client's data, not a key.
  const input_images = await Promise.all(made.inputImages.map(async ({ name, bytes }, i) => ({ name, key: (await putImage(env.IMAGES, inputImageKey(runId, i), bytes)).key })));

  const upscale = req.type === "upscale";
  const spec: GenerationSpec = {
    type: req.type,
    prompt: req.prompt ?? "",
    negative_prompt: req.negative_prompt ?? "",
    init_image_key,
    strength: req.strength ?? DEFAULTS.strength,
    steps: req.steps ?? DEFAULTS.steps,
    guidance_scale: req.guidance_scale ?? DEFAULTS.guidance_scale,
    width: size.width,
    height: size.height,
    samples: upscale ? 1 : (req.samples ?? DEFAULTS.samples),
    // An upscale has no seed, and a workflow's seeds are its graph's: their outputs report null.
    seed: upscale || workflow ? 0 : (req.seed ?? randomSeed()),
    sampler: req.sampler,
    model: req.model,
    upscale: upscale ? { scale: req.scale, upscaler: req.upscaler } : undefined,
    a1111_extra: req.a1111_extra,
    extra_data: workflow ? req.extra_data : undefined,
    workflow: workflow?.graph,
    input_images: input_images.length ? input_images : undefined,
  };
  const passThrough = await storePassThrough(env, runId, spec, opts.dialectData ?? {});
  return jobStub(env, runId).create({
    created_at,
    id: runId,
    tenant: opts.tenant,
    spec: passThrough.spec,
    backend: req.backend,
    backends: made.backends,
    pin_overrides_models: req.pin_overrides_models === true,
    timeout_s: req.timeout_s ?? DEFAULT_TIMEOUT_S,
    run_timeout_s: req.run_timeout_s,
    track_id: req.track_id,
    webhook,
    webhook_events: req.webhook_events ?? [...DEFAULT_WEBHOOK_EVENTS],
    dialect: opts.dialect,
    dialect_data: passThrough.dialect_data,
    subscriber: opts.subscriber,
    pass_through_key: passThrough.key,
    credentials: req.credentials,
    output_prefix: opts.outputLocation === undefined ? defaultOutputPrefix(runId) : chosenOutputPrefix(opts.tenant, opts.outputLocation),
    s3_output: opts.s3Output,
    public_base_url: opts.publicBaseUrl,
  });
}

/**
 * An upscale's output size: the source times `scale` (rounded), or `width` x `height` as asked. It is
 * checked here, once the source is known: over 4096 px a side is a 422 naming what made it so.
 */
function upscaledSize(source: { width: number; height: number }, req: IntakeRequest, fields: Record<string, string | undefined>): { width: number; height: number } {
  const size =
    req.scale !== undefined
      ? { width: Math.round(source.width * req.scale), height: Math.round(source.height * req.scale) }
      : { width: req.width ?? source.width, height: req.height ?? source.height };
  if (size.width > MAX_UPSCALED_SIDE || size.height > MAX_UPSCALED_SIDE) {
    const path = (req.scale !== undefined ? fields.scale : fields.width) ?? (req.scale !== undefined ? "scale" : "width");
    const message = `the result would be ${size.width}x${size.height}, over ${MAX_UPSCALED_SIDE} px a side (the image is ${source.width}x${source.height})`;
    throw new EaselError(422, "validation_failed", `${path}: ${message}`, [{ path, message }]);
  }
  return size;
}

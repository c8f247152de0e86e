/**
 * A1111's settings calls, answered per tenant: the model list across backends and the options
 * (`sd_model_checkpoint` is the tenant's default model). RunPod's getModels/getOptions/setOptions
 * answer the same.
 */
import { z } from "@hono/zod-openapi";
import type { Env } from "../../env";
import { EaselError } from "../../errors";
import { tenantHome } from "../../tenant-shards";
import { requireKnownModel } from "../../jobs/models";
import { cachedModels, modelTitle } from "../models";

const MAX_OPTION_BYTES = 64 * 1024;
/**
 * All of a tenant's options together (a whole A1111 options object is some 30 KB): RunPod's
 * getOptions answer is kept as one value, which a Durable Object caps at 2 MB.
 */
const MAX_OPTIONS_BYTES = 512 * 1024;

export const A1111OptionsSchema = z.looseObject({ sd_model_checkpoint: z.string().min(1).optional() }).openapi("A1111Options");

/** `GET /sdapi/v1/sd-models`, in A1111's exact form. */
export async function a1111Models(env: Env) {
  return (await cachedModels(env)).map(({ model: { title, model_name, hash, sha256, filename, config } }) => ({ title, model_name, hash, sha256, filename, config }));
}

/**
 * `GET /sdapi/v1/options`: what the tenant set; the checkpoint is always one of the titles
 * `sd-models` lists (the first one until the tenant picks another, as a fresh A1111 loads one).
 */
export async function a1111Options(env: Env, tenant: string): Promise<Record<string, unknown>> {
  const stored = await tenantHome(env, tenant).getOptions();
  const picked = typeof stored.sd_model_checkpoint === "string" ? await modelTitle(env, stored.sd_model_checkpoint) : undefined;
  const first = (await cachedModels(env))[0]?.model.title ?? null;
  return { samples_format: "png", ...stored, sd_model_checkpoint: picked ?? first };
}

/**
 * `POST /sdapi/v1/options`: an unknown checkpoint is a 422 naming `field`, as seed 001 refuses it;
 * a known one is kept under its listed title, whichever spelling the client used.
 */
export async function setA1111Options(env: Env, tenant: string, options: z.infer<typeof A1111OptionsSchema>, field: string): Promise<void> {
  // Options are kept with the tenant (a Durable Object value holds 2 MB): a setting is small, or refused.
  for (const [name, value] of Object.entries(options)) {
    if (JSON.stringify(value).length > MAX_OPTION_BYTES) throw new EaselError(413, "option_too_large", `${name}: the value is over ${MAX_OPTION_BYTES / 1024} KiB`, [{ path: name, message: "too large" }]);
  }
  await requireKnownModel(env, options.sd_model_checkpoint, field);
  const title = options.sd_model_checkpoint ? await modelTitle(env, options.sd_model_checkpoint) : undefined;
  if (!(await tenantHome(env, tenant).setOptions(title ? { ...options, sd_model_checkpoint: title } : options, MAX_OPTIONS_BYTES))) {
    throw new EaselError(413, "options_too_large", `the options would add up to over ${MAX_OPTIONS_BYTES / 1024} KiB`, [{ path: "(body)", message: "too large" }]);
  }
}

/**
 * A request with the tenant's settings (what it POSTed to options) as override_settings: on its own
 * A1111 they would hold for every later generation. The request's own override_settings win; the
 * checkpoint goes as the job's model; a shared backend restores them after the request.
 */
export function withTenantSettings<T extends { override_settings?: Record<string, unknown> | null }>(body: T, stored: Record<string, unknown>): T {
  const { sd_model_checkpoint: _model, ...settings } = stored;
  if (!Object.keys(settings).length) return body;
  return { ...body, override_settings: { ...settings, ...(body.override_settings ?? {}) } };
}

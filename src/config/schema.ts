import { z } from "@hono/zod-openapi";
import { base64ToBytes } from "../lib/base64";

/** Whether a `whsec_` secret's base64 decodes to a key, as the signer reads it (src/webhooks/sign.ts). */
const isBase64Key = (secret: string): boolean => (base64ToBytes(secret.slice("whsec_".length))?.length ?? 0) > 0;

/** An http(s) URL with a host: `z.url()` alone takes any scheme (`htp:/host`, `file:///…`), which would only fail later, in a job. */
const parsedUrl = (v: string): URL | undefined => {
  try {
    return new URL(v);
  } catch {
    return undefined;
  }
};
const HttpUrl = z.string().refine((v) => {
  const u = parsedUrl(v);
  return (u?.protocol === "http:" || u?.protocol === "https:") && u.hostname !== "";
}, "must be an http(s) URL with a host");

export const TenantSchema = z.object({
  api_keys: z.array(z.string().min(1)).min(1),
  webhook_secrets: z.array(z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, "must be whsec_<base64>").refine(isBase64Key, "must be whsec_<base64>: its base64 does not decode")).default([]),
  default_webhook: HttpUrl.optional(),
  /** Where this tenant's `s3://` links may point: `bucket/` or `bucket/prefix/`. None = no S3 reads. */
  s3_read_prefixes: z.array(z.string().regex(/^[^/]+\/(?:[^/]+\/)*$/, "must be bucket/ or bucket/prefix/ (ending in /)")).default([]),
  /** At most `requests` job-submitting requests in any `period_s` window (a fixed window). */
  rate_limit: z.object({ requests: z.number().int().positive(), period_s: z.number().int().positive() }).optional(),
  /** At most this many jobs queued or running at once. */
  max_active_jobs: z.number().int().positive().optional(),
});
/** A key names one tenant: under two, whichever was found first would act for both (the message never shows the key). */
export const TenantsSchema = z.record(z.string().min(1), TenantSchema).superRefine((tenants, ctx) => {
  const owner = new Map<string, string>();
  for (const [name, t] of Object.entries(tenants)) {
    t.api_keys.forEach((key, i) => {
      const first = owner.get(key);
      if (first !== undefined && first !== name) ctx.addIssue({ code: "custom", path: [name, "api_keys", i], message: `the same key is also one of ${first}'s` });
      else owner.set(key, name);
    });
  }
});

export const BackendKindSchema = z.enum(["a1111", "runpod", "cerebrium", "comfyui", "runpod-comfyui"]);
export const JobTypeSchema = z.enum(["img2img", "txt2img", "upscale", "workflow"]);

/** A backend's `timeout_s` when it names none. */
export const DEFAULT_TIMEOUT_S = 600;

/**
 * What each kind serves unless `types` says: seed 004's Cerebrium model is img2img only; A1111
 * upscales with its own extras API; a RunPod worker upscales only if it is A1111's, so that is opt-in.
 */
const DEFAULT_TYPES = {
  a1111: ["img2img", "txt2img", "upscale"],
  runpod: ["img2img", "txt2img"],
  cerebrium: ["img2img"],
  comfyui: ["img2img", "txt2img", "upscale", "workflow"],
  "runpod-comfyui": ["img2img", "txt2img", "upscale", "workflow"],
} as const satisfies Record<z.infer<typeof BackendKindSchema>, readonly z.infer<typeof JobTypeSchema>[]>;

export const BackendSchema = z
  .object({
    name: z.string().min(1),
    kind: BackendKindSchema,
    url: HttpUrl,
    api_key: z.string().optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    models: z.array(z.string().min(1)).optional(),
    types: z.array(JobTypeSchema).min(1).optional(),
    max_concurrency: z.number().int().positive().optional(),
    timeout_s: z.number().positive().optional(),
    /** Cerebrium only: run through its webhook (`webhookEndpoint`) instead of one long request. */
    async: z.boolean().optional(),
    /** How long the circuit stays open after consecutive failures. */
    circuit_cooldown_s: z.number().positive().optional(),
  })
  // Seed 004's Cerebrium model generates; it has no upscaler to call.
  .refine((b) => b.kind !== "cerebrium" || !b.types?.includes("upscale"), { path: ["types"], message: "a cerebrium backend cannot upscale" })
  // A ComfyUI graph runs only where ComfyUI runs.
  .refine((b) => b.kind === "comfyui" || b.kind === "runpod-comfyui" || !b.types?.includes("workflow"), { path: ["types"], message: "only comfyui and runpod-comfyui backends run workflow jobs" })
  .transform((b) => ({
    ...b,
    url: b.url.replace(/\/+$/, ""),
    types: [...(b.types ?? DEFAULT_TYPES[b.kind])] as z.infer<typeof JobTypeSchema>[],
    // A1111 and ComfyUI run one generation at a time; more in flight only queue inside it, out of the gateway's sight.
    max_concurrency: b.max_concurrency ?? (b.kind === "a1111" || b.kind === "comfyui" ? 1 : 4),
    timeout_s: b.timeout_s ?? DEFAULT_TIMEOUT_S,
    circuit_cooldown_s: b.circuit_cooldown_s ?? 30,
  }));
export const BackendsSchema = z.array(BackendSchema).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((b, i) => {
    if (seen.has(b.name)) ctx.addIssue({ code: "custom", path: [i, "name"], message: `duplicate backend name` });
    seen.add(b.name);
  });
});

/** What a RunPod endpoint id or a Cerebrium app name in a dialect path stands for. */
export const EndpointSchema = z.strictObject({
  backend: z.string().min(1).optional(),
  model: z.string().min(1).optional(),
  types: z.array(JobTypeSchema).min(1).optional(),
  /** A Replicate model's version id, the one its predictions report (else one derived from the name). */
  version: z.string().min(1).max(128).optional(),
});
export const EndpointsSchema = z.record(z.string().min(1), EndpointSchema);

export type EndpointConfig = z.infer<typeof EndpointSchema>;
export type TenantConfig = z.infer<typeof TenantSchema>;
export type BackendConfig = z.infer<typeof BackendSchema>;
export type BackendKind = z.infer<typeof BackendKindSchema>;
export type JobType = z.infer<typeof JobTypeSchema>;

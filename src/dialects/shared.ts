/** What every dialect needs and none should write twice. */
import type { Context } from "hono";
import { listModels } from "../backends/catalog";
import { modelKey } from "../backends/models";
import type { ModelInfo } from "../backends/types";
import { config } from "../config";
import type { Env } from "../env";
import { EaselError, invalid } from "../errors";
import { isOk, isRunId, jobStub } from "../jobs/client";
import type { JobSnapshot } from "../jobs/results";
import { bytesToBase64 } from "../lib/base64";
import type { AppEnv } from "../middleware/auth";
import { signedOutputUrl } from "../storage/links";

/** A synchronous dialect waits at most this long, like a client library's own timeout. */
export const SYNC_WAIT_MS = 10 * 60_000;
/** How often a waiting request looks up from the job to see whether its client hung up. */
const WAIT_SLICE_MS = 10_000;

/**
 * Waits for the job to end through the job object's long-poll (no sleeping loop), bounded. A
 * client that hangs up cancels its job, as A1111 stops work nobody will receive.
 */
export async function waitForEnd(env: Env, runId: string, tenant: string, signal: AbortSignal | undefined, maxMs = SYNC_WAIT_MS): Promise<JobSnapshot> {
  const stub = jobStub(env, runId);
  const until = Date.now() + maxMs;
  let seq = 0;
  for (;;) {
    if (signal?.aborted) {
      await stub.cancel(tenant);
      throw new EaselError(400, "client_closed", "the client closed the connection");
    }
    const left = until - Date.now();
    const res = await stub.waitForChange(tenant, seq, Math.max(1, Math.min(WAIT_SLICE_MS, left)));
    if (!isOk(res)) throw new EaselError(404, "not_found", "job not found");
    if (res.terminal) return res.snapshot;
    seq = res.events.at(-1)?.seq ?? seq;
    if (left <= 0) throw new EaselError(504, "timeout", "the job did not finish in time");
  }
}

export async function snapshotFor(env: Env, runId: string, tenant: string): Promise<JobSnapshot | undefined> {
  if (!isRunId(runId)) return undefined;
  const res = await jobStub(env, runId).get(tenant);
  return isOk(res) ? res.snapshot : undefined;
}

/** How a dialect gets its images as base64 strings: read now, or as references filled in later. */
export type ImagesAsBase64 = (snapshot: JobSnapshot) => Promise<string[]>;

/** The job's output images as base64, read from R2 (dialects that answer with the bytes). */
export async function outputsBase64(env: Env, snapshot: JobSnapshot): Promise<string[]> {
  return Promise.all(
    snapshot.output_keys.map(async (key) => {
      const obj = await env.IMAGES.get(key);
      return obj ? bytesToBase64(new Uint8Array(await obj.arrayBuffer())) : "";
    }),
  );
}

export async function outputUrls(env: Env, snapshot: JobSnapshot): Promise<string[]> {
  const secret = config.urlSigningSecret(env);
  return Promise.all(snapshot.output_keys.map((key) => signedOutputUrl(snapshot.input.public_base_url, secret, key)));
}

export const publicBase = (c: Context<AppEnv>): string => config.publicBaseUrl(c.env, c.req.url);

let catalog: { at: number; raw: string | undefined; models: { model: ModelInfo; backends: string[] }[] } | undefined;
const CATALOG_TTL_MS = 60_000;

/** Models across backends, cached briefly: checking a model name must not cost a backend call each time. */
export async function cachedModels(env: Env): Promise<{ model: ModelInfo; backends: string[] }[]> {
  if (catalog && catalog.raw === env.BACKENDS && Date.now() - catalog.at < CATALOG_TTL_MS) return catalog.models;
  const models = await listModels(env);
  catalog = { at: Date.now(), raw: env.BACKENDS, models };
  return models;
}

/** A1111 and SD-on-EKS refuse a model no backend has (seed 001): a 422 naming the field. */
export async function requireKnownModel(env: Env, name: string | undefined, field: string): Promise<void> {
  if (!name) return;
  const key = modelKey(name);
  const known = (await cachedModels(env)).some(({ model }) => modelKey(model.title) === key || modelKey(model.model_name) === key);
  if (!known) throw invalid(field, `unknown model "${name}"`);
}

/** The API key of HTTP basic auth (the password; any user name), as A1111 behind auth takes it. */
export function basicPassword(c: Context): string | undefined {
  const m = c.req.header("authorization")?.match(/^Basic\s+(.+)$/i);
  if (!m?.[1]) return undefined;
  try {
    const decoded = atob(m[1]);
    return decoded.slice(decoded.indexOf(":") + 1) || undefined;
  } catch {
    return undefined;
  }
}

/** `Authorization: <key>` or `Bearer <key>` (Cerebrium, RunPod). */
export function rawOrBearerKey(c: Context): string | undefined {
  const h = c.req.header("authorization")?.trim();
  return h ? h.replace(/^Bearer\s+/i, "") : undefined;
}

/** Reads a JSON body as an object, or a 400 in the caller's shape. */
export async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  let v: unknown;
  try {
    v = await c.req.json();
  } catch {
    throw new EaselError(400, "malformed_json", "the request body is not valid JSON");
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw invalid("(body)", "expected a JSON object");
  return v as Record<string, unknown>;
}

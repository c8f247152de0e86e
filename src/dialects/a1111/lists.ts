/**
 * A1111's lists and flags (`GET /sdapi/v1/<name>`) across the A1111 backends: each backend's own
 * answer, merged, cached briefly; a backend that does not answer is left out, and with no answer
 * at all the list is A1111's neutral one (empty).
 */
import { a1111Json } from "../../backends/a1111-api";
import { config } from "../../config";
import type { Env } from "../../env";
import { forgetReportedModels } from "../../backends/catalog";
import type { RescanKind } from "../../contracts/scheduler";
import { schedulerStub } from "../../schedulers";
import { withDeadline } from "../../lib/deadline";

/** How a list's answers from several backends become one. */
type Merge =
  /** An array of objects, one per `key` value, the first backend's entry winning. */
  | { kind: "array"; key: (item: Record<string, unknown>) => string }
  /** `{loaded: {...}, skipped: {...}}`, names merged. */
  | { kind: "embeddings" }
  /** `{txt2img: [names], img2img: [names]}`, names merged. */
  | { kind: "scripts" }
  /** A flags object; only booleans are passed on (paths, ports and `api_auth` are the operator's business). */
  | { kind: "flags" }
  /** One backend's report (A1111's `memory`): the first that answers. */
  | { kind: "first" };

const byName = { kind: "array", key: (i: Record<string, unknown>) => String(i.name) } as const;

/** A1111's sampler names, answered when no A1111 backend is there to ask (RunPod's A1111 worker takes them). */
const SAMPLER_NAMES = ["Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ 2M", "DPM++ SDE", "DPM++ 2M Karras", "DPM++ SDE Karras", "DDIM", "UniPC"];

export const LISTS = {
  samplers: { merge: byName, neutral: SAMPLER_NAMES.map((name) => ({ name, aliases: [], options: {} })) },
  schedulers: { merge: byName, neutral: [] },
  upscalers: { merge: byName, neutral: [] },
  "latent-upscale-modes": { merge: byName, neutral: [] },
  "sd-vae": { merge: { kind: "array", key: (i) => String(i.model_name) }, neutral: [] },
  loras: { merge: byName, neutral: [] },
  hypernetworks: { merge: byName, neutral: [] },
  embeddings: { merge: { kind: "embeddings" }, neutral: { loaded: {}, skipped: {} } },
  "face-restorers": { merge: byName, neutral: [] },
  "realesrgan-models": { merge: byName, neutral: [] },
  "prompt-styles": { merge: byName, neutral: [] },
  scripts: { merge: { kind: "scripts" }, neutral: { txt2img: [], img2img: [] } },
  "script-info": { merge: { kind: "array", key: (i) => `${String(i.name)}\n${String(i.is_img2img)}` }, neutral: [] },
  "cmd-flags": { merge: { kind: "flags" }, neutral: {} },
  memory: { merge: { kind: "first" }, neutral: { ram: { free: 0, used: 0, total: 0 }, cuda: { error: "no A1111 backend answered" } } },
} satisfies Record<string, { merge: Merge; neutral: unknown }>;

export type ListName = keyof typeof LISTS;

const LIST_TTL_MS = 30_000;
/** With no backend answering, the neutral answer is kept only this long, so one that comes back is seen soon. */
const NEUTRAL_TTL_MS = 5_000;
const LIST_TIMEOUT_MS = 3_000;

const cache = new Map<ListName, { until: number; raw: string | undefined; value: unknown }>();

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

function merge(m: Merge, answers: unknown[]): unknown {
  switch (m.kind) {
    case "array": {
      const out = new Map<string, Record<string, unknown>>();
      for (const list of answers) if (Array.isArray(list)) for (const item of list) if (isObject(item) && !out.has(m.key(item))) out.set(m.key(item), item);
      return [...out.values()];
    }
    case "embeddings": {
      const part = (k: "loaded" | "skipped") => Object.fromEntries(answers.flatMap((a) => (isObject(a) && isObject(a[k]) ? Object.entries(a[k]) : [])).reverse());
      return { loaded: part("loaded"), skipped: part("skipped") };
    }
    case "scripts": {
      const names = (k: "txt2img" | "img2img") => [...new Set(answers.flatMap((a) => (isObject(a) && Array.isArray(a[k]) ? a[k].filter((n): n is string => typeof n === "string") : [])))];
      return { txt2img: names("txt2img"), img2img: names("img2img") };
    }
    case "flags": {
      const out = new Map<string, boolean>();
      for (const a of answers) if (isObject(a)) for (const [k, v] of Object.entries(a)) if (typeof v === "boolean") out.set(k, (out.get(k) ?? false) || v);
      return Object.fromEntries(out);
    }
    case "first":
      return answers.find(isObject);
  }
}

/** Whether an answer has the list's type (an array, or an object), so a proxy's error page is left out. */
const fits = (name: ListName, v: unknown): boolean => (Array.isArray(LISTS[name].neutral) ? Array.isArray(v) : isObject(v));

export async function a1111List(env: Env, name: ListName): Promise<unknown> {
  const hit = cache.get(name);
  if (hit && hit.raw === env.BACKENDS && Date.now() < hit.until) return hit.value;
  const backends = config.backends(env).filter((b) => b.kind === "a1111");
  const answers = (await Promise.all(backends.map((b) => withDeadline(LIST_TIMEOUT_MS, (signal) => a1111Json(b, `/sdapi/v1/${name}`, { timeoutMs: LIST_TIMEOUT_MS, signal }))))).filter((a) => fits(name, a));
  const value = answers.length ? merge(LISTS[name].merge, answers) : LISTS[name].neutral;
  cache.set(name, { until: Date.now() + (answers.length ? LIST_TTL_MS : NEUTRAL_TTL_MS), raw: env.BACKENDS, value });
  return value;
}

/**
 * A1111's refresh-checkpoints / refresh-loras: each A1111 backend rescans, then the lists are read
 * afresh. Each backend's scheduler object answers once a rescan that began after the call has
 * ended, running at most one per interval for the whole deployment and sharing it among callers
 * (durable-objects/backend-rescans.ts): A1111 rescans under its generation lock, and any tenant may
 * ask, from any isolate. This isolate's lists are dropped once a rescan ran for this call.
 */
export async function refreshA1111(env: Env, what: RescanKind): Promise<void> {
  const backends = config.backends(env).filter((b) => b.kind === "a1111");
  const ran = await Promise.all(backends.map((b) => schedulerStub(env, b.name).rescan(b, what).catch(() => false)));
  if (!ran.includes(true)) return;
  if (what === "checkpoints") forgetReportedModels();
  else cache.delete("loras");
}

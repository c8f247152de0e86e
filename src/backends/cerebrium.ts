import type { BackendConfig } from "../config";
import type { GenerationSpec } from "../jobs/spec";
import { Base64Bytes, jsonBody } from "../lib/json-slots";
import { hex, hmacSha256Stream, prefixedStream, timingSafeEqual } from "../lib/crypto";
import { callBackend, callBackendForImages, failed, parseJsonObject, readImageAnswer, statusFailure, storedImages, type ImageAnswer } from "./http";
import type { BackendAdapter, CallbackSource, GenerationRequest, ImageStore, ModelInfo, Outcome } from "./types";

/** Cerebrium cannot be asked about a run: a cut predict call is never sent again blindly. */
const cannotAsk = async () => "unknown" as const;

/** Where Cerebrium's answer (and webhook body) carries the images. */
const CEREBRIUM_IMAGES = ["result"] as const;

/** Seed 004's request body for Cerebrium's `sd-img-2-img` model. */
export function cerebriumBody(spec: GenerationSpec, image: Uint8Array | undefined): Record<string, unknown> {
  return {
    prompt: spec.prompt,
    ...(image ? { image: new Base64Bytes(image) } : {}),
    num_inference_steps: spec.steps,
    guidance_scale: spec.guidance_scale,
    num_images_per_prompt: spec.samples,
    negative_prompt: spec.negative_prompt,
    seed: spec.seed,
    strength: spec.strength,
    width: spec.width,
    height: spec.height,
  };
}

/** `{run_id, message, result: [base64]}` (its images stored as it was read) as an outcome; a missing or short `result` is a failure. */
export function cerebriumOutcome(answer: Pick<ImageAnswer, "json" | "images">, samples: number): Outcome {
  const { json } = answer;
  if (!json) return failed("backend_failed", "Cerebrium answered with something that is not a JSON object", true);
  const list = Array.isArray(json.result) ? answer.images : [];
  const message = typeof json.message === "string" ? json.message : "no result";
  if (list.length === 0) {
    return /out ?of ?memory/i.test(message) ? failed("out_of_memory", "Cerebrium ran out of GPU memory", true, message) : failed("backend_failed", "Cerebrium returned no images", true, message);
  }
  if (list.length < samples) return failed("backend_failed", `Cerebrium returned ${list.length} of ${samples} images`, true);
  return storedImages(list, samples);
}

/**
 * Checks `X-Cerebrium-Webhook-Signature: v1,<hex HMAC-SHA256 of "{request_id}.{timestamp}.{body}">`
 * with the secret sent along with the request, in constant time; the body is read as a stream.
 */
export async function verifyCerebriumSignature(secret: string, headers: Headers, body: ReadableStream<Uint8Array>): Promise<boolean> {
  const header = headers.get("x-cerebrium-webhook-signature");
  // Cerebrium's docs name the id header X-Request-Id; the longer spelling is accepted too.
  const requestId = headers.get("x-request-id") ?? headers.get("x-cerebrium-request-id");
  const timestamp = headers.get("x-cerebrium-webhook-timestamp");
  if (!header || !requestId || !timestamp) {
    await body.cancel();
    return false;
  }
  const [mac] = await hmacSha256Stream([secret], prefixedStream(`${requestId}.${timestamp}.`, body));
  const expected = `v1,${hex(mac ?? new Uint8Array())}`;
  return header.split(" ").some((candidate) => timingSafeEqual(candidate, expected));
}

/**
 * Cerebrium's v4 API (`…/v4/<project>/<app>/<function>`) takes the key as a Bearer token; the older
 * `run.cerebrium.ai` of seed 004 takes it as it is. A key already written as `Bearer …` goes as it is.
 */
export const cerebriumAuthorization = (url: string, key: string): string => (/^bearer /i.test(key) || !/\/v4\//.test(new URL(url).pathname) ? key : `Bearer ${key}`);

/** Cerebrium predict: one synchronous call by default, or its webhook mode with `async: true`. */
export class CerebriumAdapter implements BackendAdapter {
  constructor(readonly config: BackendConfig) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const key = this.config.api_key;
    return { "content-type": "application/json", ...(key ? { authorization: cerebriumAuthorization(this.config.url, key) } : {}), ...extra };
  }

  async submit(req: GenerationRequest): Promise<Outcome> {
    const body = jsonBody(cerebriumBody(req.spec, req.initImage));
    if (this.config.async) {
      const url = `${this.config.url}?async=true&webhookEndpoint=${encodeURIComponent(req.callbackUrl)}`;
      const res = await callBackend(url, { method: "POST", headers: this.headers({ "x-webhook-secret": req.callbackSecret }), body }, 30_000, req.signal, cannotAsk);
      if (!res.ok) return res.outcome;
      if (res.status < 200 || res.status >= 300) return statusFailure(res.status, res.body);
      const runId = parseJsonObject(res.body)?.run_id;
      // Cerebrium has no status API and retries its callback only briefly (never on a 5xx): the poll is a deadline.
      return { kind: "pending", externalId: typeof runId === "string" ? runId : "cerebrium", pollAfterMs: this.config.timeout_s * 1000 };
    }
    const res = await callBackendForImages(
      this.config.url,
      { method: "POST", headers: this.headers(), body },
      { timeoutMs: this.config.timeout_s * 1000, signal: req.signal, imagesAt: CEREBRIUM_IMAGES, store: req.images, onFinished: req.onFinished, arrival: cannotAsk },
    );
    if (!res.ok) return res.outcome;
    const { answer } = res;
    if (res.status !== 200) return res.status >= 500 ? failed("backend_failed", `Cerebrium answered ${res.status}`, true, answer.head.slice(0, 300)) : statusFailure(res.status, answer.head);
    return cerebriumOutcome(answer, req.spec.samples);
  }

  async poll(): Promise<Outcome> {
    return failed("timeout", `Cerebrium sent no result within ${this.config.timeout_s} s`, true);
  }

  /** Read twice: the signature over the whole body first, and only a signed body's images are stored. */
  async callback(req: { headers: Headers; body: CallbackSource; secret: string; samples: number; images: ImageStore }): Promise<Outcome | undefined> {
    if (!(await verifyCerebriumSignature(req.secret, req.headers, await req.body.open()))) return undefined;
    return cerebriumOutcome(await readImageAnswer(await req.body.open(), CEREBRIUM_IMAGES, req.images), req.samples);
  }

  async cancel(): Promise<boolean> {
    // Cerebrium documents no way to stop a run; its result is ignored once the job has ended.
    return false;
  }

  async listModels(): Promise<ModelInfo[]> {
    const name = new URL(this.config.url).pathname.split("/").filter(Boolean).at(-2) ?? this.config.name;
    return [{ title: name, model_name: name, hash: null, sha256: null, filename: name, config: null, backend: this.config.name }];
  }
}

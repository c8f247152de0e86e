import { Base64Decoder } from "../lib/base64";
import { parseJsonText, parseStreamingJson, type StringSink } from "../lib/json-stream";
import { fetchPastStaleConnections, MayHaveArrived, type Arrival } from "../lib/stale-connections";
import { deadline } from "../lib/deadline";
import { fixedLength, type StreamedBody } from "../lib/json-slots";
import { concatBytes, readAtMost } from "../lib/streams";
import type { StoredImage } from "../storage/images";
import type { BackendFailure, ImageStore, Outcome } from "./types";

export const failed = (code: BackendFailure["code"], message: string, retryable: boolean, detail?: string): Outcome => ({
  kind: "failed",
  failure: { code, message, retryable, ...(detail ? { detail } : {}) },
});

export type HttpResult = { ok: true; status: number; body: string } | { ok: false; outcome: Outcome };

/** A request to a backend: its body a string, a form, or streamed (a JSON body with its images, see `jsonBody`). */
export type BackendInit = Omit<RequestInit, "body"> & { body?: string | FormData | StreamedBody };

/**
 * One bounded HTTP call to a backend. Network errors and timeouts come back as retryable
 * failures, so an adapter never throws for something the backend did. A request that may start
 * GPU work passes `arrival` (see fetchPastStaleConnections): cut after it may have reached the
 * backend, it comes back `lost`.
 */
export async function callBackend(url: string, init: BackendInit, timeoutMs: number, signal: AbortSignal, arrival?: () => Promise<Arrival>): Promise<HttpResult> {
  return bounded(url, init, timeoutMs, signal, arrival, async (res) => ({ ok: true, status: res.status, body: await res.text() }));
}

/** `callBackend` for an answer read only up to `maxBytes`: a longer one is not read on, and fails. */
export async function callBackendAtMost(url: string, init: BackendInit, opts: { timeoutMs: number; maxBytes: number; signal: AbortSignal }): Promise<HttpResult> {
  return bounded(url, init, opts.timeoutMs, opts.signal, undefined, async (res) => {
    const reader = res.body?.getReader();
    const bytes = reader ? await readAtMost(reader, opts.maxBytes) : new Uint8Array();
    if (bytes) return { ok: true as const, status: res.status, body: new TextDecoder().decode(bytes) };
    await reader?.cancel().catch(() => undefined);
    return { ok: false as const, outcome: failed("backend_failed", `the backend's answer is over ${opts.maxBytes} bytes`, true) };
  });
}

/** A backend's answer read with its images streamed into the store (see `readImageAnswer`). */
export type HttpImageResult = { ok: true; status: number; answer: ImageAnswer } | { ok: false; outcome: Outcome };

/**
 * An answer shorter than this is read in about the time a slot's release takes, so `onFinished`
 * is not called for it: the slot goes back once, with its verdict, when the job settles.
 */
export const EARLY_RETURN_MIN_BYTES = 256 * 1024;

/**
 * `callBackend` for an answer that can carry images: the strings of the list at `imagesAt` never
 * stay in memory. A 200 whose body is long (or of unknown length) calls `onFinished` as soon as its
 * headers arrive, before the body is read.
 */
export async function callBackendForImages(
  url: string,
  init: BackendInit,
  opts: { timeoutMs: number; signal: AbortSignal; imagesAt: readonly string[]; store: ImageStore; onFinished?: () => void; arrival?: () => Promise<Arrival> },
): Promise<HttpImageResult> {
  return bounded(url, init, opts.timeoutMs, opts.signal, opts.arrival, async (res) => {
    if (res.status === 200 && !(declaredLength(res) < EARLY_RETURN_MIN_BYTES)) opts.onFinished?.();
    return { ok: true, status: res.status, answer: await readImageAnswer(await answerBody(res), opts.imagesAt, opts.store) };
  });
}

async function bounded<T>(
  url: string,
  init: BackendInit,
  timeoutMs: number,
  signal: AbortSignal,
  arrival: (() => Promise<Arrival>) | undefined,
  read: (res: Response) => Promise<T>,
): Promise<T | { ok: false; outcome: Outcome }> {
  const timeout = deadline(timeoutMs);
  try {
    const both = AbortSignal.any([signal, timeout.signal]);
    const { body } = init;
    // A string or a streamed body (opened again for each send) can go again on another connection; a form cannot.
    const resendable = !(body instanceof FormData);
    const send = () => fetch(url, { ...init, body: body === undefined || typeof body === "string" || body instanceof FormData ? body : fixedLength(body), redirect: "manual", signal: both });
    const res = resendable ? await fetchPastStaleConnections(send, both, arrival) : await send();
    try {
      return await read(res);
    } catch (err) {
      // The answer came but could not be read here (nested too deep for the reader's stack, too
      // large an array): the gateway's limit, not a backend that cannot be reached.
      if (err instanceof RangeError) return { ok: false, outcome: failed("backend_failed", "the backend's answer could not be read", false, err.message) };
      throw err;
    }
  } catch (err) {
    if (err instanceof MayHaveArrived) return { ok: false, outcome: { kind: "lost", message: err.message } };
    if (signal.aborted) return { ok: false, outcome: failed("canceled", "the attempt was abandoned", false) };
    // A request that may have started GPU work, unanswered in time, may run on: lost, not failed,
    // so it is not sent again until the backend no longer runs it (durable-objects/job/lost-call.ts).
    if (timeout.signal.aborted && arrival) return { ok: false, outcome: { kind: "lost", message: `no answer within ${Math.round(timeoutMs / 1000)} s; the backend may still run it`, unanswered: true } };
    if (timeout.signal.aborted) return { ok: false, outcome: failed("timeout", `no answer within ${Math.round(timeoutMs / 1000)} s`, true) };
    return { ok: false, outcome: failed("backend_unavailable", "the backend could not be reached", true, err instanceof Error ? err.message : String(err)) };
  } finally {
    timeout.clear();
  }
}

/**
 * A JSON answer whose images were decoded and stored while it was read: the document with each
 * image as "", the stored images in the list's order (null for one that is not base64), and the
 * answer's first KiB for a log line.
 */
export interface ImageAnswer {
  json: Record<string, unknown> | undefined;
  images: (StoredImage | null)[];
  head: string;
}

/**
 * An answer of at most this many bytes is read whole and parsed by the runtime (a 512² image is
 * about 0.5 MB of base64); a larger one is streamed, so a 4 × 2048² answer is never held whole.
 */
const WHOLE_ANSWER_BYTES = 4 * 1024 * 1024;

/** The answer's `content-length`; NaN when it has none (a chunked answer). */
const declaredLength = (res: Response): number => Number(res.headers.get("content-length") ?? NaN);

/** The answer's text when it ends within WHOLE_ANSWER_BYTES; else its stream, what was read first included. */
async function answerBody(res: Response): Promise<ReadableStream<Uint8Array> | string> {
  const body = res.body;
  if (!body) return "";
  if (declaredLength(res) > WHOLE_ANSWER_BYTES) return body;
  const reader = body.getReader();
  const read: Uint8Array[] = [];
  let size = 0;
  while (size <= WHOLE_ANSWER_BYTES) {
    const { done, value } = await reader.read();
    if (done) return new TextDecoder().decode(concatBytes(read, size));
    read.push(value);
    size += value.byteLength;
  }
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const first = read.shift();
      if (first) return controller.enqueue(first);
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/**
 * Reads an answer, each string of the list at `imagesAt` decoded from base64 piece by piece and
 * handed to the store as soon as it ends: one image's bytes in memory at a time, never the text
 * (unless the answer is small enough to be given whole).
 */
export async function readImageAnswer(body: ReadableStream<Uint8Array> | string, imagesAt: readonly string[], store: ImageStore): Promise<ImageAnswer> {
  const images: (StoredImage | null)[] = [];
  const sink = (n: number): StringSink => {
    const decoder = new Base64Decoder();
    images[n] = null;
    return {
      write: (piece) => decoder.write(piece),
      end: async () => {
        const chunks = decoder.end();
        // An empty string is no image either.
        if (chunks && decoder.length) images[n] = await store.put(n, chunks, decoder.length);
      },
    };
  };
  const { value, head } = typeof body === "string" ? await parseJsonText(body, imagesAt, sink) : await parseStreamingJson(body, imagesAt, sink);
  return { json: isObject(value) ? value : undefined, images, head };
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

export function parseJsonObject(body: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export const basicAuth = (username: string, password: string): string => `Basic ${btoa(`${username}:${password}`)}`;

/** A backend's non-2xx answer; its body goes to the operator's log, never to the tenant. */
export function statusFailure(status: number, body: string): Outcome {
  const detail = body.slice(0, 300);
  if (status === 401 || status === 403) return failed("backend_unavailable", `the backend refused our credentials (${status})`, true, detail);
  // Only a 400 or 422 blames the request; any other answer is this backend's problem (a wrong URL's
  // 404, a 429, a 5xx), which another backend may not have.
  if (status === 400 || status === 422) return failed("invalid_request", `the backend refused the request's parameters (${status})`, false, detail);
  // Refused for now (RunPod's per-endpoint request limits): nothing was queued, so nothing runs twice when it goes again later.
  if (status === 429) return failed("backend_busy", "the backend refused the request for now (429)", true, detail);
  // The request's size, not the backend's health: another backend may take it (RunPod's /run takes 10 MB).
  if (status === 413) return failed("request_too_large", "the backend refused the request as too large (413)", true, detail);
  return failed("backend_failed", `the backend answered ${status}`, true, detail);
}

/** The first `samples` stored images as a success, or a failure if one of them was not base64. */
export function storedImages(list: (StoredImage | null)[], samples: number): Outcome {
  const images: StoredImage[] = [];
  for (const image of list.slice(0, samples)) {
    if (!image) return failed("backend_failed", "backend returned an image that is not base64", true);
    images.push(image);
  }
  return { kind: "done", images };
}

/**
 * What one request to a backend can carry. A job's images travel inside it as base64 (an A1111
 * `init_images`, a worker-comfyui `images` list), and RunPod's `/run` takes at most 10 MB of body:
 * a job over that cannot run on a RunPod endpoint, and is routed to the backends that can take it,
 * or refused at intake, never sent to fail there.
 */
import type { BackendConfig, BackendKind } from "../config";
import { invalid } from "../errors";
import { base64Length } from "../lib/base64";

const MAX_REQUEST_BYTES: Partial<Record<BackendKind, number>> = { runpod: 10_000_000, "runpod-comfyui": 10_000_000 };

/** Kept in a request for the parameters and the JSON around them (the prompts and pass-through fields are counted). */
const ENVELOPE_BYTES = 4 * 1024;


/** The job's request body, about: its images as base64, and the JSON it carries besides (prompts, a graph, pass-through fields). */
export function requestBytes(images: number[], json: () => number): number {
  return images.reduce((sum, n) => sum + base64Length(n), ENVELOPE_BYTES) + json();
}

const takes = (b: BackendConfig, bytes: () => number): boolean => {
  const limit = MAX_REQUEST_BYTES[b.kind];
  return limit === undefined || bytes() <= limit;
};

/**
 * The names of the backends among `fitting` that can take the job's request, when that leaves some
 * out (undefined: all can). None can: a 422 naming `field()`, the request's largest part. `bytes` is
 * counted only when a backend with a limit is among them.
 */
export function backendsTaking(fitting: BackendConfig[], bytes: () => number, field: () => string): string[] | undefined {
  if (fitting.every((b) => MAX_REQUEST_BYTES[b.kind] === undefined)) return undefined;
  let counted: number | undefined;
  const size = () => (counted ??= bytes());
  const taking = fitting.filter((b) => takes(b, size));
  if (!taking.length) {
    const limit = Math.min(...fitting.map((b) => MAX_REQUEST_BYTES[b.kind] ?? Infinity));
    throw invalid(field(), `the request would be about ${size()} bytes with its images as base64, over the ${limit} bytes the backends that can run it take in one request`);
  }
  return taking.length < fitting.length ? taking.map((b) => b.name) : undefined;
}

import { base64ToBytes } from "../lib/base64";
import type { BackendFailure, Outcome } from "./types";

export const failed = (code: BackendFailure["code"], message: string, retryable: boolean, detail?: string): Outcome => ({
  kind: "failed",
  failure: { code, message, retryable, ...(detail ? { detail } : {}) },
});

export type HttpResult = { ok: true; status: number; body: string } | { ok: false; outcome: Outcome };

/**
 * One bounded HTTP call to a backend. Network errors and timeouts come back as retryable
 * failures, so an adapter never throws for something the backend did.
 */
export async function callBackend(url: string, init: RequestInit, timeoutMs: number, signal: AbortSignal): Promise<HttpResult> {
  const timeout = AbortSignal.timeout(Math.max(1, Math.floor(timeoutMs)));
  try {
    const res = await fetch(url, { ...init, redirect: "manual", signal: AbortSignal.any([signal, timeout]) });
    return { ok: true, status: res.status, body: await res.text() };
  } catch (err) {
    if (signal.aborted) return { ok: false, outcome: failed("canceled", "the attempt was abandoned", false) };
    if (timeout.aborted) return { ok: false, outcome: failed("timeout", `no answer within ${Math.round(timeoutMs / 1000)} s`, true) };
    return { ok: false, outcome: failed("backend_unavailable", "the backend could not be reached", true, err instanceof Error ? err.message : String(err)) };
  }
}

export function parseJsonObject(body: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
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
  return failed("backend_failed", `the backend answered ${status}`, true, detail);
}

/** The first `samples` base64 images (data-URI prefixes allowed) as a success, or a failure if one is not base64. */
export function decodedImages(list: string[], samples: number): Outcome {
  const images: Uint8Array[] = [];
  for (const b64 of list.slice(0, samples)) {
    const bytes = base64ToBytes(b64.replace(/^data:[^,]*,/, ""));
    if (!bytes) return failed("backend_failed", "backend returned an image that is not base64", true);
    images.push(bytes);
  }
  return { kind: "done", images };
}

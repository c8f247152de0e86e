/** A small HTTP client for end-to-end tests: the gateway's API as a user calls it. */

export interface JobView {
  id: string;
  type: "txt2img" | "img2img" | "upscale";
  status: "queued" | "running" | "succeeded" | "failed" | "canceled";
  track_id: string | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  backend: string | null;
  model: string | null;
  seed: number | null;
  output: { url: string; content_type: string; width: number; height: number; seed: number | null }[];
  error: { code: string; message: string } | null;
  metrics: { queue_ms: number; run_ms: number };
  progress: { fraction: number; step: number; steps: number; eta_s: number | null } | null;
}

export function api(base: string, key: string) {
  const headers = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${key}`, "content-type": "application/json", ...extra });
  return {
    base,
    get: (path: string, signal?: AbortSignal) => fetch(base + path, { headers: headers(), signal }),
    post: (path: string, body?: unknown, extra?: Record<string, string>) =>
      fetch(base + path, { method: "POST", headers: headers(extra), body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) }),
  };
}

export type Api = ReturnType<typeof api>;

const TERMINAL = new Set(["succeeded", "failed", "canceled"]);

export async function waitForStatus(client: Api, id: string, status: JobView["status"] | "terminal", timeoutMs = 30_000): Promise<JobView> {
  const until = Date.now() + timeoutMs;
  let last: JobView | undefined;
  while (Date.now() < until) {
    // One slow answer must not hold the wait past its own deadline.
    const res = await client.get(`/v1/jobs/${id}`, AbortSignal.timeout(Math.max(1, Math.min(10_000, until - Date.now())))).catch(() => undefined);
    if (res?.status === 200) {
      last = (await res.json()) as JobView;
      if (status === "terminal" ? TERMINAL.has(last.status) : last.status === status) return last;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${id} not ${status} within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
}

export const waitForJob = (client: Api, id: string, timeoutMs = 30_000): Promise<JobView> => waitForStatus(client, id, "terminal", timeoutMs);

/** Width and height from a PNG's IHDR, or undefined when the bytes are not a PNG. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 24 || sig.some((b, i) => bytes[i] !== b)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

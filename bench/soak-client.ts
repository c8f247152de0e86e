/**
 * The soak's HTTP client to the gateway (bench/soak.ts): every answer is kept for the 5xx count,
 * and the restarts are the windows that count leaves out.
 */

export type Answer = { status: number; headers: Headers; json: unknown };

/** After a restart, requests still answered 5xx for this long count as part of it. */
export const RESTART_GRACE_MS = 5_000;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function gatewayClient(base: string) {
  const answers: { at: number; status: number; what: string }[] = [];
  const restarts: { from: number; to: number }[] = [];
  const inRestart = (t: number) => restarts.some((w) => t >= w.from && t <= w.to);

  /**
   * One request; answers null when it was cut short (a restart), or "refused" when the connection
   * was refused, so the request never reached the gateway.
   */
  async function call(path: string, init: RequestInit = {}): Promise<Answer | null | "refused"> {
    try {
      const res = await fetch(base + path, { ...init, signal: AbortSignal.timeout(60_000) });
      const text = await res.text();
      answers.push({ at: Date.now(), status: res.status, what: res.status >= 500 ? `${init.method ?? "GET"} ${path.slice(0, 60)} ${res.status} ${text.slice(0, 160)}` : "" });
      let json: unknown = undefined;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, headers: res.headers, json };
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      return cause?.code === "ECONNREFUSED" ? "refused" : null;
    }
  }
  /** Any client may send again a request the gateway never received; bounded. */
  async function send(path: string, init: RequestInit = {}): Promise<Answer | null> {
    const until = Date.now() + 120_000;
    for (;;) {
      const res = await call(path, init);
      if (res !== "refused") return res;
      if (Date.now() > until) return null;
      await sleep(250);
    }
  }
  return { send, answers, restarts, inRestart };
}

export async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** Every job a tenant has, as `GET /v1/jobs` pages them (bounded): jobs whose submit answer a client never got are listed too. */
export async function listJobs(send: (path: string, init?: RequestInit) => Promise<Answer | null>, headers: Record<string, string>): Promise<{ id: string; status: string }[]> {
  const jobs: { id: string; status: string }[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const res = await send(`/v1/jobs?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { headers });
    if (res?.status !== 200) break;
    const body = res.json as { data: { id: string; status: string }[]; next_cursor: string | null };
    jobs.push(...body.data);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return jobs;
}

/**
 * A prediction's `urls.stream`: Server-Sent Events as Replicate's stream API sends them (`output`
 * per output URL, then `done`; `error` on failure). The clients fetch it without a key, so the URL is
 * signed; its path is under `/v1/files/` as Replicate's is, which is what makes the JS client hand
 * the outputs over as `FileOutput`s.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { config } from "../../config";
import type { Env } from "../../env";
import { EaselError } from "../../errors";
import { isOk, jobStub } from "../../jobs/client";
import { checkRunId } from "../../jobs/run-id";
import { base64UrlEncode } from "../../lib/base64";
import { hmacSha256, timingSafeEqual } from "../../lib/crypto";
import { MAX_TIMEOUT_S } from "../../schemas/job";
import { outputUrls } from "../outputs";
import { replicateApp } from "./problem";

/** A stream link lives as long as an output link: a client may open it late. */
const STREAM_TTL_S = 7 * 24 * 3600;
/**
 * A stream is held until its prediction ends, which its timeout bounds (at most MAX_TIMEOUT_S from
 * submission); past this, it ends with an `error` event, never silently (the clients do not reopen it).
 */
const STREAM_MAX_MS = (MAX_TIMEOUT_S + 60) * 1000;
const WAIT_SLICE_MS = 25_000;

const signature = async (secret: string, tenant: string, id: string, expires: number): Promise<string> =>
  base64UrlEncode(await hmacSha256(secret, `replicate-stream\n${tenant}\n${id}\n${expires}`));

export async function streamUrl(env: Env, base: string, tenant: string, id: string, nowMs = Date.now()): Promise<string> {
  const [secret] = config.urlSigningSecrets(env);
  const expires = Math.floor(nowMs / 1000) + STREAM_TTL_S;
  const query = new URLSearchParams({ tenant, expires: String(expires), sig: await signature(secret, tenant, id, expires) });
  return `${base}/v1/files/${id}/stream?${query}`;
}

/** Signed under any listed secret and not expired; every secret is tried, so timing tells nothing. */
async function verified(env: Env, q: { tenant?: string; expires?: string; sig?: string }, id: string): Promise<string | undefined> {
  const secrets = config.urlSigningSecrets(env);
  const expires = Number(q.expires);
  if (!q.tenant || !q.sig || !Number.isInteger(expires) || expires * 1000 < Date.now()) return undefined;
  const { tenant, sig } = q;
  const matches = await Promise.all(secrets.map(async (s) => timingSafeEqual(await signature(s, tenant, id, expires), sig)));
  return matches.includes(true) ? tenant : undefined;
}

export const replicateStream = replicateApp();

replicateStream.openapi(
  createRoute({
    method: "get",
    path: "/v1/files/{id}/stream",
    tags: ["Replicate"],
    summary: "A prediction's events (signed link from urls.stream, no key): output, done, error",
    request: { params: z.object({ id: z.string() }), query: z.object({ tenant: z.string().optional(), expires: z.string().optional(), sig: z.string().optional() }) },
    responses: { 200: { content: { "text/event-stream": { schema: z.string() } }, description: "The events" }, 403: { description: "A bad or expired link" }, 404: { description: "No such prediction" } },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const tenant = await verified(c.env, c.req.valid("query"), id);
    if (!tenant) throw new EaselError(403, "forbidden", "this stream link is not valid (wrong or expired signature)");
    if (!(await checkRunId(c.env, id))) throw new EaselError(404, "not_found", "prediction not found");
    const stub = jobStub(c.env, id);
    if (!isOk(await stub.get(tenant))) throw new EaselError(404, "not_found", "prediction not found");
    return streamSSE(c, async (stream) => {
      const until = Date.now() + STREAM_MAX_MS;
      let seq = 0;
      // Every event has an id, as Replicate's do: replicate-python's decoder drops an event without one.
      let n = 0;
      const send = (event: string, data: string) => stream.writeSSE({ event, data, id: String(++n) });
      while (Date.now() < until && !stream.aborted) {
        const res = await stub.waitForChange(tenant, seq, Math.max(1, Math.min(WAIT_SLICE_MS, until - Date.now())));
        if (!isOk(res)) return;
        seq = res.events.at(-1)?.seq ?? seq;
        if (!res.terminal) {
          await stream.write(": keep-alive\n\n");
          continue;
        }
        const { job } = res.snapshot;
        if (job.status === "failed") return send("error", job.error?.message ?? "prediction failed");
        if (job.status === "succeeded") for (const url of await outputUrls(c.env, res.snapshot)) await send("output", url);
        return send("done", JSON.stringify(job.status === "canceled" ? { reason: "canceled" } : {}));
      }
      if (!stream.aborted) await send("error", "the stream was held as long as a prediction can run; read the prediction at urls.get");
    });
  },
);

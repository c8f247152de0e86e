import { createRoute, z } from "@hono/zod-openapi";
import { createApp } from "../app";
import { verifyCallbackToken } from "../jobs/callback-token";
import type { CallbackBody } from "../contracts/job";
import { jobStub } from "../jobs/client";
import { checkRunId } from "../jobs/run-id";
import { randomId } from "../lib/crypto";
import { stageChunkedBody } from "../storage/stage-body";

/**
 * Four 2048² images, incompressible, as base64 (4 × ~16.8 MB) plus the JSON around them: the
 * largest answer a job the contract allows can need.
 */
export const CALLBACK_MAX_BYTES = 80 * 1024 * 1024;
/** An attempt number as the gateway writes it in its callback URLs. */
const ATTEMPT = /^[1-9][0-9]{0,8}$/;
/** Bodies up to this go to the job object as they are; larger ones are staged in R2 (RPC carries 32 MiB at most). */
const INLINE_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Reads a refused body to its end without keeping it (the body limit bounds it): answering before
 * the body is read makes some proxies (wrangler dev's among them) drop the connection instead.
 */
async function drain(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!body) return;
  const reader = body.getReader();
  for (;;) {
    const { done } = await reader.read().catch(() => ({ done: true }));
    if (done) return;
  }
}

/** Where asynchronous backends (RunPod, Cerebrium) report completion; the token is a MAC per attempt. */
export const callbacks = createApp();
callbacks.openapi(
  createRoute({
    method: "post",
    path: "/internal/callbacks/{id}/{attempt}/{token}",
    hide: true,
    request: { params: z.object({ id: z.string(), attempt: z.string(), token: z.string().min(1) }) },
    responses: { 200: { description: "Accepted" }, 404: { description: "Unknown or stale callback" }, 413: { description: "Body too large" } },
  }),
  async (c) => {
    const { id, attempt: given, token } = c.req.valid("param");
    // An attempt number the gateway never issues is a callback it never issued: a 404 like every other.
    const attempt = ATTEMPT.test(given) ? Number(given) : 0;
    // Checked before any Durable Object is named: a forged callback creates nothing anywhere.
    if (!attempt || !(await checkRunId(c.env, id)) || !(await verifyCallbackToken(c.env, id, attempt, token))) {
      await drain(c.req.raw.body);
      return c.json({ ok: false }, 404);
    }
    const length = Number(c.req.header("content-length") ?? NaN);
    const key = `callbacks/${id}/${attempt}/${randomId("cb")}`;
    let body: CallbackBody;
    if (Number.isFinite(length) && length > INLINE_MAX_BYTES && c.req.raw.body) {
      // Declared large: streamed into R2 as it arrives, the Worker never holds the whole body.
      await c.env.IMAGES.put(key, c.req.raw.body.pipeThrough(new FixedLengthStream(length)));
      body = { staged: key };
    } else if (c.req.raw.body) {
      // Declared small, or no length at all (chunked): inline while small, else into R2 part by part.
      body = await stageChunkedBody(c.env.IMAGES, key, c.req.raw.body, { inlineMax: INLINE_MAX_BYTES, maxBytes: CALLBACK_MAX_BYTES });
    } else {
      body = { text: "" };
    }
    const { accepted } = await jobStub(c.env, id).backendCallback(attempt, token, [...c.req.raw.headers], body);
    return c.json({ ok: accepted }, accepted ? 200 : 404);
  },
);

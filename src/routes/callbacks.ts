import { createRoute, z } from "@hono/zod-openapi";
import { createApp } from "../app";
import { isRunId, jobStub } from "../jobs/client";

/** Where asynchronous backends (RunPod, Cerebrium) report completion; the token is per attempt. */
export const callbacks = createApp();
callbacks.openapi(
  createRoute({
    method: "post",
    path: "/internal/callbacks/{id}/{attempt}/{token}",
    hide: true,
    request: { params: z.object({ id: z.string(), attempt: z.coerce.number().int().positive(), token: z.string().min(1) }) },
    responses: { 200: { description: "Accepted" }, 404: { description: "Unknown or stale callback" } },
  }),
  async (c) => {
    const { id, attempt, token } = c.req.valid("param");
    if (!isRunId(id)) return c.json({ ok: false }, 404);
    const body = await c.req.text();
    const { accepted } = await jobStub(c.env, id).backendCallback(attempt, token, [...c.req.raw.headers], body);
    return c.json({ ok: accepted }, accepted ? 200 : 404);
  },
);

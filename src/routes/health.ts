import { createRoute, z } from "@hono/zod-openapi";
import { createApp } from "../app";

export const health = createApp();
health.openapi(
  createRoute({
    method: "get",
    path: "/healthz",
    summary: "Liveness",
    responses: { 200: { content: { "application/json": { schema: z.object({ ok: z.literal(true) }) } }, description: "Serving" } },
  }),
  (c) => c.json({ ok: true as const }, 200),
);

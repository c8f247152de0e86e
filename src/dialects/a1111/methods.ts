/**
 * A1111 is FastAPI: a path it serves, asked with a method it does not take, is a 405
 * `{"detail": "Method Not Allowed"}` with `Allow`, decided by routing before its auth runs.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../middleware/auth";

export const methodNotAllowed = (app: OpenAPIHono<AppEnv>) =>
  createMiddleware<AppEnv>(async (c, next) => {
    // Read at request time, once every route of the app is registered; a middleware's method is ALL.
    const allowed = new Set(app.routes.filter((r) => r.method !== "ALL" && r.path === c.req.path).map((r) => r.method));
    // Starlette answers HEAD wherever GET is; a preflight is CORS's to answer.
    if (allowed.has("GET")) allowed.add("HEAD");
    if (!allowed.size || allowed.has(c.req.method) || c.req.method === "OPTIONS") return next();
    return c.json({ detail: "Method Not Allowed" }, 405, { allow: [...allowed].join(", ") });
  });

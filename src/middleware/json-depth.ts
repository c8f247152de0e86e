import { createMiddleware } from "hono/factory";
import { invalid } from "../errors";
import { nestsDeeperThan } from "../lib/json-depth";
import type { AppEnv } from "./auth";

/** Far past what any API here sends (a ComfyUI graph or an A1111 script's arguments nest a few levels). */
export const MAX_JSON_DEPTH = 128;

/**
 * A client's JSON body nested past MAX_JSON_DEPTH is a 422 before any route reads it: a value that
 * deep overflows whatever walks it recursively, the gateway's own code or a backend's (which would
 * then fail the job on every backend, counted against each). The body's text is kept for the route.
 */
export const jsonDepth = createMiddleware<AppEnv>(async (c, next) => {
  const type = c.req.header("content-type") ?? "";
  if (c.req.method === "GET" || c.req.method === "HEAD" || !type.includes("json") || c.req.path.startsWith("/internal/")) return next();
  if (nestsDeeperThan(await c.req.text(), MAX_JSON_DEPTH)) throw invalid("body", `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  await next();
});

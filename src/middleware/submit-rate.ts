import { createMiddleware } from "hono/factory";
import { checkRate } from "../jobs/limits";
import type { AppEnv } from "./auth";

/**
 * Counts a request to a route that creates jobs against its tenant's `rate_limit` before its body is
 * read or checked: a request refused for its body counts like any other (contract §6, "accepted or
 * not"), and one over the limit is a 429 whatever its body. The route hands `c.var.rateCounted` to
 * intake, which then does not count it again. After the tenant's auth, before the route's validators.
 */
export const countsTowardRate = createMiddleware<AppEnv>(async (c, next) => {
  await checkRate(c.env, c.var.tenant);
  c.set("rateCounted", true);
  await next();
});

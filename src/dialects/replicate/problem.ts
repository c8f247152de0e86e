/** Replicate's errors: `application/problem+json` `{title, detail, status}`, as both official clients read them. */
import type { ErrorHandler } from "hono";
import { createApp, toEaselError } from "../../app";
import type { EaselError } from "../../errors";
import type { AppEnv } from "../../middleware/auth";

const TITLES: Record<number, string> = {
  400: "Bad request",
  401: "Unauthenticated",
  404: "Not found",
  409: "Conflict",
  413: "Request entity too large",
  422: "Input validation failed",
  429: "Too many requests",
};

/** The problem body; a 422 also lists each bad field as Replicate's `invalid_fields`. */
export function problemBody(err: EaselError) {
  return {
    title: TITLES[err.status] ?? (err.status >= 500 ? "Internal server error" : "Request failed"),
    detail: err.status === 429 ? `Request was throttled. ${err.message}` : err.message,
    status: err.status,
    ...(err.details ? { invalid_fields: err.details.map((d) => ({ type: "invalid", field: d.path, description: d.message })) } : {}),
  };
}

export const onProblem: ErrorHandler<AppEnv> = (err, c) => {
  const e = toEaselError(err);
  return c.body(JSON.stringify(problemBody(e)), e.status, { ...e.headers, "content-type": "application/problem+json" });
};

/** A route module of this dialect: its errors leave as problems. */
export function replicateApp() {
  const app = createApp();
  app.onError(onProblem);
  return app;
}

import { OpenAPIHono } from "@hono/zod-openapi";
import { swaggerUI } from "@hono/swagger-ui";
import type { ErrorHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import type { ZodError } from "zod";
import { configErrorFrom } from "./config";
import { EaselError, type ErrorDetail } from "./errors";
import type { AppEnv } from "./middleware/auth";

/** A request body over this is a 413 before anything reads it. */
export const MAX_BODY_BYTES = 15 * 1024 * 1024;

/** Each bad field by its path; a key the schema does not know is its own field (zod reports them together, at their parent). */
const zodDetails = (error: ZodError): ErrorDetail[] =>
  error.issues.flatMap((i) => {
    const at = (path: PropertyKey[]) => path.map(String).join(".") || "(body)";
    return i.code === "unrecognized_keys" ? i.keys.map((key) => ({ path: at([...i.path, key]), message: "not a field this request takes" })) : [{ path: at(i.path), message: i.message }];
  });

export const validationError = (error: ZodError): EaselError => {
  const details = zodDetails(error);
  return new EaselError(422, "validation_failed", details.map((d) => `${d.path}: ${d.message}`).join("; "), details);
};

/** An app whose zod failures become the contract's 422, shared by every route module. */
export const createApp = () =>
  new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error);
    },
  });

export function errorBody(err: EaselError) {
  return { error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
}

/** An `onError` handler that answers every error in one API's own JSON shape. */
export const errorsAs =
  (shape: (err: EaselError) => unknown, headers: (err: EaselError) => Record<string, string> | undefined = (e) => e.headers): ErrorHandler<AppEnv> =>
  (err, c) => {
    const e = toEaselError(err);
    return c.json(shape(e), e.status, headers(e));
  };

/** Every error leaves as the contract's JSON: never an HTML page, never a stack. */
export function toEaselError(err: unknown): EaselError {
  if (err instanceof EaselError) return err;
  if (err instanceof HTTPException) {
    // A multipart body the runtime cannot read (a file name with a NUL, a broken boundary) is the form's fault, not JSON's.
    if (err.status === 400 && err.message.startsWith("Malformed FormData")) {
      const message = "not a multipart/form-data body that can be read (a part's name or file name holding a control character, or a broken boundary)";
      return new EaselError(422, "validation_failed", `(body): ${message}`, [{ path: "(body)", message }]);
    }
    if (err.status === 400) return new EaselError(400, "malformed_json", "the request body is not valid JSON");
    if (err.status === 413) return new EaselError(413, "payload_too_large", `the request body is over ${MAX_BODY_BYTES / 1024 / 1024} MiB`);
    return new EaselError(err.status, "http_error", err.message || "request failed");
  }
  const config = configErrorFrom(err);
  if (config) return config;
  console.error("unhandled error", err instanceof Error ? err.message : String(err));
  return new EaselError(500, "internal_error", "something went wrong on our side");
}

/**
 * Bodies are JSON whatever the client's Content-Type says: `curl -d` sends form-encoded by
 * default, and a JSON body must not be read as empty because of it. Invalid JSON is still a 400.
 */
export const jsonBodies = createMiddleware<AppEnv>(async (c, next) => {
  const type = c.req.header("content-type") ?? "";
  // Multipart uploads (Replicate's `/v1/files`) keep their type: their boundary is in it.
  if (c.req.method !== "GET" && c.req.method !== "HEAD" && !type.includes("json") && !type.toLowerCase().startsWith("multipart/form-data")) {
    const headers = new Headers(c.req.raw.headers);
    headers.set("content-type", "application/json");
    c.req.raw = new Request(c.req.raw, { headers });
  }
  await next();
});

export function mountDocs(app: OpenAPIHono<AppEnv>): void {
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "Easel", version: "1.0.0", description: "Webhook-first async image generation (img2img, txt2img)." },
    security: [{ bearer: [] }],
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  app.get("/docs", swaggerUI({ url: "/openapi.json" }));
}

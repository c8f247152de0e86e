import type { ContentfulStatusCode } from "hono/utils/http-status";

/** One problem with one field, as the contract's `details` lists them. */
export interface ErrorDetail {
  path: string;
  message: string;
}

/**
 * The one error type of the gateway: a machine code, an HTTP status and a human message.
 * `app.onError` turns it into `{"error": {"code", "message", "details"?}}`.
 */
export class EaselError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "EaselError";
  }
}

export const invalid = (path: string, message: string): EaselError =>
  new EaselError(422, "validation_failed", `${path}: ${message}`, [{ path, message }]);

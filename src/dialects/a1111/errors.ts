/** `/sdapi/v1`'s errors in A1111's shapes, with FastAPI's status for a body it cannot read. */
import type { ErrorHandler } from "hono";
import { toEaselError } from "../../app";
import { EaselError } from "../../errors";
import type { AppEnv } from "../../middleware/auth";
import { a1111Error } from "./translate";

/**
 * A body that is not JSON (or no object): A1111 leaves it to FastAPI's own handler, a 422 with
 * `detail`, like every validation error, where the gateway's other APIs answer 400.
 */
const asFastApi = (e: EaselError): EaselError => (e.code === "malformed_json" ? new EaselError(422, "validation_failed", e.message, [{ path: "", message: "the body is not a JSON object that can be read" }]) : e);

export const a1111Errors: ErrorHandler<AppEnv> = (err, c) => {
  const e = asFastApi(toEaselError(err));
  return c.json(a1111Error(e), e.status, e.headers);
};

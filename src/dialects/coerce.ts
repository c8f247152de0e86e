/**
 * Request fields as pydantic v1 reads them, for the dialects whose servers are pydantic models
 * (A1111's FastAPI 0.94; Cerebrium's sd-img-2-img `Item`): it coerces where it can rather than
 * refusing, so `"steps": "20"` is 20 there, and here. What it cannot read stays a 422 naming the
 * field, in pydantic's words.
 */
import { z } from "@hono/zod-openapi";

/** What Python's `int()` reads from a string: a sign, digits with single underscores between, spaces around. */
const INT_TEXT = /^\s*[+-]?\d+(?:_\d+)*\s*$/;
/** What Python's `float()` reads besides: a fraction, an exponent. (nan and inf are no size or scale, and stay refused.) */
const FLOAT_TEXT = /^\s*[+-]?(?:\d+(?:_\d+)*(?:\.(?:\d+(?:_\d+)*)?)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+(?:_\d+)*)?\s*$/;
const number = (text: string): number => Number(text.replace(/_/g, ""));

/** pydantic v1's `bool`: these strings, any case, and the numbers 0 and 1. */
const TRUE = new Set(["1", "on", "t", "true", "y", "yes"]);
const FALSE = new Set(["0", "off", "f", "false", "n", "no"]);

/** pydantic v1's `int`: a float is truncated, a bool is 0 or 1, a string is read as Python's `int()` reads it. */
export const pyInt = () =>
  z.preprocess(
    (v) => (typeof v === "boolean" ? Number(v) : typeof v === "number" ? Math.trunc(v) : typeof v === "string" && INT_TEXT.test(v) ? number(v) : v),
    z.number({ error: "value is not a valid integer" }).int(),
  );

/** pydantic v1's `float`: a bool is 0 or 1, a string is read as Python's `float()` reads it. */
export const pyFloat = () => z.preprocess((v) => (typeof v === "boolean" ? Number(v) : typeof v === "string" && FLOAT_TEXT.test(v) ? number(v) : v), z.number({ error: "value is not a valid float" }));

/** pydantic v1's `bool`. */
export const pyBool = () =>
  z.preprocess((v) => {
    const key = typeof v === "string" ? v.toLowerCase() : typeof v === "number" ? String(v) : undefined;
    return key !== undefined && TRUE.has(key) ? true : key !== undefined && FALSE.has(key) ? false : v;
  }, z.boolean({ error: "value could not be parsed to a boolean" }));

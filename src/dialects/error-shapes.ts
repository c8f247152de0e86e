/**
 * Which API a path belongs to, for an error raised before any route has it: a body over the size
 * limit is refused by the Worker before routing, and still answers in the calling API's own shape
 * (each dialect's routes shape their own errors; see index.ts).
 */
import type { ErrorHandler } from "hono";
import { errorsAs } from "../app";
import type { AppEnv } from "../middleware/auth";
import { a1111Errors } from "./a1111/errors";
import { cerebriumError } from "./cerebrium/translate";
import { comfyErrorOf } from "./comfyui/translate";
import { eksError } from "./eks/translate";
import { modelsLabError } from "./modelslab/translate";
import { onProblem } from "./replicate/problem";
import { runpodError } from "./runpod/translate";

const SHAPES: [RegExp, ErrorHandler<AppEnv>][] = [
  [/^\/sdapi\/v1\//, a1111Errors],
  [/^\/api\/v[36]\//, errorsAs(modelsLabError)],
  [/^\/(v2|runpod)\//, errorsAs(runpodError)],
  [/^\/v1\/(predictions|files|account|deployments(\/[^/]+\/[^/]+)?|(models|deployments)\/[^/]+\/[^/]+\/predictions)\/?$/, onProblem],
  // Replicate's resources Easel does not serve: a client of it reads their 404 as a problem.
  [/^\/v1\/(hardware|collections|trainings)(\/|$)/, onProblem],
  [/^\/(v4\/|cerebrium\/|[^/]+\/predict\/?$)/, errorsAs(cerebriumError)],
  [/^\/(eks\/|[^/]+\/v1alpha[12]\/?$)/, errorsAs(eksError)],
  [/^(\/api)?\/(prompt|upload\/image|queue|interrupt|history)\/?$/, errorsAs(comfyErrorOf)],
];

/** The error handler of the API `path` belongs to, if it is a dialect's. */
export const dialectErrors = (path: string): ErrorHandler<AppEnv> | undefined => SHAPES.find(([re]) => re.test(path))?.[1];

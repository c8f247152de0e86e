import { createMiddleware } from "hono/factory";
import type { Env } from "../env";
import { config } from "../config";
import { jobStub } from "./client";
import { mintRunId } from "./run-id";

/**
 * Job objects brought into being ahead of their jobs. Most of an accepted submit's time under
 * `wrangler dev` went to creating the new job's Durable Object (a new object and write: ~9–12 ms
 * against ~3 ms for a write to one already running, measured side by side), so each isolate keeps
 * a few run ids whose objects already run, and a submit takes one. The ids are random like any
 * other and used once; an object that never gets its job has touched no storage (see
 * `JobObject.warm`), so an isolate that goes away leaves nothing behind.
 */
const warmed: { id: string; signer: string }[] = [];
let warming = 0;

/**
 * A run id for a new job: one whose object is already up when there is one, a fresh one otherwise.
 * Only an id minted under today's signing key is handed out (a rotated-out key may be dropped later).
 */
export async function takeRunId(env: Env): Promise<string> {
  const [signer] = config.urlSigningSecrets(env);
  for (let next = warmed.shift(); next; next = warmed.shift()) if (next.signer === signer) return next.id;
  return mintRunId(env);
}

export interface WarmJobObjectsOptions {
  /** Run ids kept warm per isolate. */
  size: number;
  /** Wait this long after the response before warming, so the warming never delays it. */
  delayMs: number;
}

/** After each request, tops the isolate's warm run ids back up to `size`, after the response. */
export const warmJobObjects = (opts: WarmJobObjectsOptions) =>
  createMiddleware<{ Bindings: Env }>(async (c, next) => {
    await next();
    const missing = opts.size - warmed.length - warming;
    if (missing <= 0) return;
    warming += missing;
    c.executionCtx.waitUntil(
      (async () => {
        await new Promise((resolve) => setTimeout(resolve, opts.delayMs));
        await Promise.all(
          Array.from({ length: missing }, async () => {
            try {
              const [signer] = config.urlSigningSecrets(c.env);
              const id = await mintRunId(c.env);
              if (await jobStub(c.env, id).warm()) warmed.push({ id, signer });
            } catch {
              // Not warmed: a later submit just creates its object itself.
            } finally {
              warming--;
            }
          }),
        );
      })(),
    );
  });

import { createRoute, z } from "@hono/zod-openapi";
import { createApp } from "../app";
import { LISTING_WAIT_MS, reportedModels } from "../backends/catalog";
import { config, type BackendConfig } from "../config";
import { BackendKindSchema, JobTypeSchema } from "../config/schema";
import type { Env } from "../env";
import { tenantAuth } from "../middleware/auth";
import { schedulerStub } from "../schedulers";

const BackendViewSchema = z.object({
  name: z.string(),
  kind: BackendKindSchema,
  models: z.array(z.string()).openapi({ description: "the configured list, else what the backend lists" }),
  types: z.array(JobTypeSchema),
  max_concurrency: z.number().int(),
  active: z.number().int().openapi({ description: "slots in use" }),
  waiting: z.number().int().openapi({ description: "jobs in line for a slot" }),
  circuit: z.enum(["closed", "open", "half_open"]),
  open_until: z.string().nullable(),
  recent: z.object({
    jobs: z.number().int().openapi({ description: "attempts counted (succeeded or failed), the last 100 at most" }),
    success_rate: z.number().min(0).max(1).nullable(),
    run_ms_p50: z.number().int().nullable(),
  }),
  requests: z.number().int().openapi({ description: "slot requests (acquire, release, renew, …) the backend's scheduler has taken from jobs since it last started: its load" }),
});
const BackendListSchema = z.object({ data: z.array(BackendViewSchema) }).openapi("BackendList");


/** What an operator may see of a backend: its load and health, never its URL or credentials. */
async function view(env: Env, b: BackendConfig): Promise<z.infer<typeof BackendViewSchema>> {
  const [status, models] = await Promise.all([
    schedulerStub(env, b.name).status(),
    // Through the list its scheduler keeps: listing a RunPod endpoint is a billed job.
    b.models ?? reportedModels(env, b, LISTING_WAIT_MS).then((list) => list.map((m) => m.title)),
  ]);
  return {
    name: b.name,
    kind: b.kind,
    models,
    types: [...b.types],
    max_concurrency: b.max_concurrency,
    active: status.active,
    waiting: status.waiting,
    circuit: status.circuit,
    open_until: status.open_until === null ? null : new Date(status.open_until).toISOString(),
    recent: status.recent,
    requests: status.requests,
  };
}

export const backends = createApp();
backends.use("/v1/backends", tenantAuth());
backends.openapi(
  createRoute({
    method: "get",
    path: "/v1/backends",
    summary: "Each GPU backend: slots in use, queue, circuit, recent success rate and run time",
    responses: { 200: { content: { "application/json": { schema: BackendListSchema } }, description: "The backends, in configuration order" } },
  }),
  async (c) => c.json({ data: await Promise.all(config.backends(c.env).map((b) => view(c.env, b))) }, 200),
);

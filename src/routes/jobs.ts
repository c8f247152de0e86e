import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { createApp } from "../app";
import { config } from "../config";
import { EaselError } from "../errors";
import { jobStub, unwrap } from "../jobs/client";
import { submitJob } from "../jobs/intake";
import { listJobs } from "../jobs/list";
import { checkRunId } from "../jobs/run-id";
import { tenantAuth } from "../middleware/auth";
import { countsTowardRate } from "../middleware/submit-rate";
import { DeliveryListSchema, EventListSchema, JobListQuerySchema, JobListSchema, JobRequestSchema, JobSchema, MAX_TIMEOUT_S } from "../schemas/job";

const ErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), details: z.array(z.object({ path: z.string(), message: z.string() })).optional() }) }).openapi("Error");
const IdParam = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" }, example: "run_abc..." }) });
const json = <T extends z.ZodType>(schema: T, description: string) => ({ content: { "application/json": { schema } }, description });
const errors = {
  401: json(ErrorSchema, "Missing or unknown API key"),
  404: json(ErrorSchema, "No such job for this tenant"),
};

/** Only run ids we minted name a job; every other string is a 404 without naming a Durable Object. */
async function stubFor(env: Parameters<typeof jobStub>[0], id: string) {
  if (!(await checkRunId(env, id))) throw new EaselError(404, "not_found", "job not found");
  return jobStub(env, id);
}

/** A stream lasts as long as its job can (timeout_s at most, from its submission), and a minute. */
const SSE_MAX_MS = (MAX_TIMEOUT_S + 60) * 1000;
const SSE_WAIT_MS = 25_000;

export const jobs = createApp();
jobs.use("/v1/jobs", tenantAuth());
jobs.use("/v1/jobs/*", tenantAuth());

jobs.openapi(
  createRoute({
    method: "post",
    path: "/v1/jobs",
    summary: "Submit an img2img, txt2img, upscale or workflow (a ComfyUI graph) job",
    middleware: [countsTowardRate] as const,
    request: {
      headers: z.object({ "idempotency-key": z.string().min(1).max(255).optional() }),
      body: { content: { "application/json": { schema: JobRequestSchema } }, required: true },
    },
    responses: {
      202: json(JobSchema, "Accepted: the job is queued"),
      200: json(JobSchema, "The job this Idempotency-Key already created"),
      409: json(ErrorSchema, "Idempotency-Key reused with another body"),
      413: json(ErrorSchema, "Body over 15 MiB"),
      422: json(ErrorSchema, "Invalid request; details name each field"),
      ...errors,
    },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const key = c.req.valid("header")["idempotency-key"];
    // An upscale's source comes as `image`; the core takes every source image as init_image.
    const { image, ...rest } = body;
    const { snapshot, created } = await submitJob(c.env, body.type === "upscale" ? { ...rest, init_image: image } : rest, {
      tenant: c.var.tenant,
      dialect: "v1",
      fields: body.type === "upscale" ? { init_image: "image" } : undefined,
      publicBaseUrl: config.publicBaseUrl(c.env, c.req.url),
      idempotency: key ? { key, body } : undefined,
      rateCounted: c.var.rateCounted,
    });
    return c.json(snapshot.job, created ? 202 : 200);
  },
);

jobs.openapi(
  createRoute({
    method: "get",
    path: "/v1/jobs",
    summary: "The tenant's jobs, newest first, every API's included; page with next_cursor",
    request: { query: JobListQuerySchema },
    responses: { 200: json(JobListSchema, "A page of jobs"), 401: errors[401], 422: json(ErrorSchema, "A bad filter, limit or cursor") },
  }),
  async (c) => {
    const q = c.req.valid("query");
    return c.json(
      await listJobs(c.env, c.var.tenant, {
        limit: q.limit,
        cursor: q.cursor,
        status: q.status,
        type: q.type,
        track_id: q.track_id,
        created_after: q.created_after === undefined ? undefined : Date.parse(q.created_after),
        created_before: q.created_before === undefined ? undefined : Date.parse(q.created_before),
      }),
      200,
    );
  },
);

jobs.openapi(
  createRoute({ method: "get", path: "/v1/jobs/{id}", summary: "Get a job", request: { params: IdParam }, responses: { 200: json(JobSchema, "The job"), ...errors } }),
  async (c) => {
    const { id } = c.req.valid("param");
    const stub = await stubFor(c.env, id);
    return c.json(unwrap(await stub.get(c.var.tenant)).snapshot.job, 200);
  },
);

jobs.openapi(
  createRoute({
    method: "post",
    path: "/v1/jobs/{id}/cancel",
    summary: "Cancel a job",
    request: { params: IdParam },
    responses: { 200: json(JobSchema, "The job, now canceled"), 409: json(ErrorSchema, "The job already ended"), ...errors },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const stub = await stubFor(c.env, id);
    return c.json(unwrap(await stub.cancel(c.var.tenant)).snapshot.job, 200);
  },
);

jobs.openapi(
  createRoute({
    method: "get",
    path: "/v1/jobs/{id}/events",
    summary: "A job's event log, oldest first; Server-Sent Events with Accept: text/event-stream",
    request: { params: IdParam },
    responses: {
      200: { content: { "application/json": { schema: EventListSchema }, "text/event-stream": { schema: z.string() } }, description: "The events" },
      ...errors,
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const stub = await stubFor(c.env, id);
    const tenant = c.var.tenant;
    if (!(c.req.header("accept") ?? "").includes("text/event-stream")) {
      return c.json({ data: unwrap(await stub.events(tenant)).events }, 200);
    }
    // Fail before the stream starts, so an unknown job is a plain 404.
    unwrap(await stub.events(tenant, Number.MAX_SAFE_INTEGER));
    const resumeFrom = Number(c.req.header("last-event-id") ?? 0);
    return streamSSE(c, async (stream) => {
      let seq = Number.isInteger(resumeFrom) && resumeFrom > 0 ? resumeFrom : 0;
      const until = Date.now() + SSE_MAX_MS;
      while (Date.now() < until && !stream.aborted) {
        const res = await stub.waitForChange(tenant, seq, SSE_WAIT_MS);
        if (!res.ok) return;
        for (const e of res.events) {
          await stream.writeSSE({ id: String(e.seq), event: e.type, data: JSON.stringify(e) });
          seq = e.seq;
        }
        // A job's final event is written with its final state, so nothing can follow it.
        if (res.terminal) return;
        if (!res.events.length) await stream.write(": keep-alive\n\n");
      }
    });
  },
);

jobs.openapi(
  createRoute({
    method: "get",
    path: "/v1/jobs/{id}/deliveries",
    summary: "Every webhook delivery attempt of a job",
    request: { params: IdParam },
    responses: { 200: json(DeliveryListSchema, "One row per attempt"), ...errors },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const stub = await stubFor(c.env, id);
    return c.json({ data: unwrap(await stub.deliveries(c.var.tenant)).deliveries }, 200);
  },
);

jobs.openapi(
  createRoute({
    method: "post",
    path: "/v1/jobs/{id}/deliveries/redeliver",
    summary: "Send the job's terminal event again (same webhook-id, fresh signature)",
    request: { params: IdParam },
    responses: { 202: json(z.object({ event_id: z.string() }), "Queued for delivery"), 409: json(ErrorSchema, "The job has not ended or has no webhook"), ...errors },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const stub = await stubFor(c.env, id);
    return c.json({ event_id: unwrap(await stub.redeliver(c.var.tenant)).event_id }, 202);
  },
);

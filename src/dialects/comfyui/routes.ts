/**
 * ComfyUI's prompt API (`/prompt`, `/history`, `/queue`, `/interrupt`) over the tenant's `workflow`
 * jobs: each prompt is a job (visible at `/v1/jobs/{run id}`), numbered and followed by the tenant's
 * ComfyUI object. Only the host changes for a ComfyUI client.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { config } from "../../config";
import { EaselError } from "../../errors";
import { jobStub } from "../../jobs/client";
import { submitJob } from "../../jobs/intake";
import type { JobSnapshot } from "../../jobs/results";
import { snapshotFor } from "../../jobs/tenant-job";
import { mintRunId } from "../../jobs/run-id";
import type { AppEnv } from "../../middleware/auth";
import { countsTowardRate } from "../../middleware/submit-rate";
import { BASES, comfyApp, comfyAuth } from "./auth";
import { nodeDefinitions } from "./info";
import { promptProblem } from "./validate";
import { promptSnapshot, tracker, trackerName, uploadedInputs } from "./prompts";
import { PROMPT_FIELD, PROMPT_ID, PromptRequestSchema, comfyError, graphError, historyEntry, promptData, type PromptRequest } from "./translate";
import { splitExtraData } from "./extra-data";
import { cancelPrompts, clearPending, interruptAll, listQueue, queueRemaining } from "./queue";

/** How many prompts `/history` lists and `{delete}` names, at most (the queue itself is listed whole: ./queue.ts). */
const MAX_LISTED = 200;
/** Longer than any prompt id a prompt is stored under. */
const MAX_PROMPT_ID_CHARS = 256;

export const comfyui = comfyApp();

const json = (description: string) => ({ content: { "application/json": { schema: z.unknown() } }, description });
const tags = ["ComfyUI"];
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** ComfyUI's first checks of a request, in its own words; the graph's own rules come with the job. */
function requestProblem(body: PromptRequest) {
  if (body.prompt === undefined) return comfyError("no_prompt", "No prompt provided", "No prompt provided");
  if (!isObject(body.prompt)) return comfyError("invalid_prompt", "the prompt must be an object of nodes (ComfyUI's API format)", PROMPT_FIELD);
  if (body.prompt_id !== undefined && !PROMPT_ID.test(body.prompt_id)) return comfyError("invalid_prompt_id", "prompt_id must be a lowercase hyphenated UUID", "prompt_id");
  return undefined;
}

async function queuePrompt(c: Context<AppEnv>, body: PromptRequest) {
  const problem = requestProblem(body);
  if (problem) return c.json(problem, 400);
  const { env } = c;
  const tenant = c.var.tenant;
  const graph = body.prompt as Record<string, unknown>;
  const runId = await mintRunId(env);
  const promptId = body.prompt_id ?? runId;
  const clientId = body.client_id ?? null;
  const split = splitExtraData(body.extra_data ?? {});
  if ("error" in split) return c.json(split.error, 400);
  const { shown, forwarded, credentials, webhook } = split;
  const extra_data = clientId === null ? shown : { ...shown, client_id: clientId };
  // Checked as ComfyUI checks it when every backend that runs graphs said what its nodes are.
  const nodes = await nodeDefinitions(env);
  const refused = nodes.complete ? promptProblem(nodes.defs, graph) : undefined;
  if (refused) return c.json(refused, 400);
  let inputs: Awaited<ReturnType<typeof uploadedInputs>>;
  try {
    inputs = await uploadedInputs(env, tenant, graph);
  } catch (err) {
    // A LoadImage name that could not be a file of the tenant's: ComfyUI's own 400, under its node.
    if (err instanceof EaselError && err.status === 422) return c.json(graphError(err, graph), 400);
    throw err;
  }
  const reserved = await tracker(env, tenant).reserve({ prompt_id: promptId, run_id: runId, client_id: clientId });
  if (!reserved.ok) return c.json(comfyError("invalid_prompt_id", "this prompt_id is already in use", "prompt_id"), 400);
  try {
    await submitJob(
      env,
      { type: "workflow", workflow: inputs.graph, images: inputs.images.length ? inputs.images : undefined, webhook, extra_data: forwarded, credentials },
      {
        tenant,
        dialect: "comfyui",
        publicBaseUrl: config.publicBaseUrl(env, c.req.url),
        runId,
        subscriber: trackerName(tenant),
        dialectData: { prompt_id: promptId, number: reserved.number, client_id: clientId, extra_data, ...(Object.keys(inputs.renamed).length ? { renamed: inputs.renamed } : {}) },
        fields: { workflow: PROMPT_FIELD, images: PROMPT_FIELD, webhook: "extra_data.webhook" },
        rateCounted: c.var.rateCounted,
      },
    );
  } catch (err) {
    await tracker(env, tenant).drop(promptId);
    if (err instanceof EaselError && err.status === 422) {
      const onGraph = err.details?.some((d) => d.path === PROMPT_FIELD || d.path.startsWith(`${PROMPT_FIELD}.`));
      return c.json(onGraph ? graphError(err, graph) : comfyError("invalid_prompt", err.message, err.details?.map((d) => d.path).join(", ") ?? ""), 400);
    }
    throw err;
  }
  c.header("x-easel-run-id", runId);
  return c.json({ prompt_id: promptId, number: reserved.number, node_errors: {} }, 200);
}

for (const base of BASES) {
  comfyui.openapi(
    createRoute({
      method: "post",
      path: `${base}/prompt`,
      tags,
      summary: "Queue a prompt (an API-format graph) as a workflow job",
      middleware: [comfyAuth, countsTowardRate] as const,
      request: { body: { content: { "application/json": { schema: PromptRequestSchema } }, required: true } },
      responses: { 200: json("`{prompt_id, number, node_errors}`"), 400: json("`{error, node_errors}`"), 401: json("no key") },
    }),
    (c) => queuePrompt(c, c.req.valid("json")),
  );

  comfyui.openapi(
    createRoute({ method: "get", path: `${base}/prompt`, tags, summary: "The tenant's queue length", middleware: [comfyAuth] as const, responses: { 200: json("`{exec_info: {queue_remaining}}`") } }),
    async (c) => c.json({ exec_info: { queue_remaining: await queueRemaining(c.env, c.var.tenant) } }, 200),
  );

  comfyui.openapi(
    createRoute({
      method: "get",
      path: `${base}/history/{prompt_id}`,
      tags,
      summary: "A prompt's history entry: `{}` until it ends; 404 for a prompt the tenant does not have or took out of the history",
      middleware: [comfyAuth] as const,
      request: { params: z.object({ prompt_id: z.string() }) },
      responses: { 200: json("`{<prompt_id>: {prompt, outputs, status, meta}}` or `{}`"), 404: json("no such prompt") },
    }),
    async (c) => {
      const { prompt_id } = c.req.valid("param");
      // An id the tenant does not have is a 404 (the contract's: a read of an id that does not
      // exist), where ComfyUI answers {}: its clients read the entry under the id, absent either way.
      const snapshot = prompt_id.length > MAX_PROMPT_ID_CHARS ? undefined : await promptSnapshot(c.env, c.var.tenant, prompt_id);
      if (!snapshot) throw new EaselError(404, "not_found", "no such prompt");
      if (!TERMINAL.has(snapshot.job.status)) return c.json({}, 200);
      // A prompt taken out of the history (POST /history) keeps its job (at /v1), but is no prompt
      // of the history any more: a 404, as for a client's own prompt_id, whose mapping went with it.
      if (!PROMPT_ID.test(prompt_id) && !(await tracker(c.env, c.var.tenant).lookup(prompt_id))) throw new EaselError(404, "not_found", "no such prompt");
      return c.json({ [prompt_id]: historyEntry(snapshot) }, 200);
    },
  );

  comfyui.openapi(
    createRoute({
      method: "get",
      path: `${base}/history`,
      tags,
      summary: "The tenant's prompts that ended last, in the order they ended",
      middleware: [comfyAuth] as const,
      request: { query: z.object({ max_items: z.coerce.number().int().min(0).optional() }) },
      responses: { 200: json("`{<prompt_id>: entry, ...}`") },
    }),
    async (c) => {
      const limit = Math.min(c.req.valid("query").max_items ?? MAX_LISTED, MAX_LISTED);
      // ComfyUI's get_history with max_items=0: the last none.
      if (limit === 0) return c.json({}, 200);
      // As ComfyUI's get_history: the last N entries of a history kept in the order prompts end.
      const latest = await tracker(c.env, c.var.tenant).latestEnded(limit);
      const snapshots = await Promise.all(latest.reverse().map((p) => snapshotFor(c.env, p.run_id, c.var.tenant)));
      const ended = snapshots.filter((s): s is JobSnapshot => s !== undefined && TERMINAL.has(s.job.status));
      return c.json(Object.fromEntries(ended.map((s) => [promptData(s).prompt_id, historyEntry(s)])), 200);
    },
  );

  comfyui.openapi(
    createRoute({
      method: "post",
      path: `${base}/history`,
      tags,
      summary: "Take the tenant's ended prompts out of its history: `{delete: [prompt_id]}` or `{clear: true}` (their jobs stay at /v1)",
      middleware: [comfyAuth] as const,
      request: { body: { content: { "application/json": { schema: z.looseObject({ delete: z.array(z.string().max(MAX_PROMPT_ID_CHARS)).max(MAX_LISTED).optional(), clear: z.boolean().optional() }) } }, required: true } },
      responses: { 200: { description: "empty" } },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const t = tracker(c.env, c.var.tenant);
      if (body.clear) await t.forgetEnded("all");
      if (body.delete?.length) await t.forgetEnded(body.delete);
      return c.body(null, 200);
    },
  );

  comfyui.openapi(
    createRoute({
      method: "post",
      path: `${base}/free`,
      tags,
      summary: "Accepted and ignored: the backends manage their own memory, shared by every tenant",
      middleware: [comfyAuth] as const,
      responses: { 200: { description: "empty" } },
    }),
    (c) => c.body(null, 200),
  );

  comfyui.openapi(
    createRoute({ method: "get", path: `${base}/queue`, tags, summary: "The tenant's running and pending prompts", middleware: [comfyAuth] as const, responses: { 200: json("`{queue_running, queue_pending}`") } }),
    async (c) => c.json(await listQueue(c.env, c.var.tenant), 200),
  );

  comfyui.openapi(
    createRoute({
      method: "post",
      path: `${base}/queue`,
      tags,
      summary: "Cancel the tenant's pending prompts: `{delete: [prompt_id]}` or `{clear: true}`",
      middleware: [comfyAuth] as const,
      request: { body: { content: { "application/json": { schema: z.looseObject({ delete: z.array(z.string().max(MAX_PROMPT_ID_CHARS)).max(MAX_LISTED).optional(), clear: z.boolean().optional() }) } }, required: true } },
      responses: { 200: { description: "empty" } },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const { env } = c;
      const tenant = c.var.tenant;
      if (body.clear) await clearPending(env, tenant);
      const named = await Promise.all((body.delete ?? []).map((id) => promptSnapshot(env, tenant, id)));
      // As ComfyUI: only what still waits is removed; a prompt already running goes on.
      await cancelPrompts(env, tenant, named.flatMap((s) => (s ? [s.job.id] : [])), true);
      return c.body(null, 200);
    },
  );

  comfyui.openapi(
    createRoute({
      method: "post",
      path: `${base}/interrupt`,
      tags,
      summary: "Stop the tenant's running prompt (`{prompt_id}`), or all its running prompts",
      middleware: [comfyAuth] as const,
      responses: { 200: { description: "empty" } },
    }),
    async (c) => {
      const { env } = c;
      const tenant = c.var.tenant;
      const body = (await c.req.json().catch(() => ({}))) as unknown;
      const promptId = isObject(body) && typeof body.prompt_id === "string" ? body.prompt_id : undefined;
      if (!promptId) {
        await interruptAll(env, tenant);
        return c.body(null, 200);
      }
      const s = await promptSnapshot(env, tenant, promptId);
      if (s?.job.status === "running") await jobStub(env, s.job.id).cancel(tenant);
      return c.body(null, 200);
    },
  );
}

/** Replicate's reads beside predictions: the account, models, deployments and versions, the webhook signing secret, and files. */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { config } from "../../config";
import { EaselError, invalid } from "../../errors";
import type { AppEnv } from "../../middleware/auth";
import { deleteFile, fileObject, requireFile, storeFile } from "./files";
import { deploymentObject, listedModels, modelByName, modelByVersion, modelObject, versionObject } from "./models";
import { replicateApp } from "./problem";

export const replicateAccount = replicateApp();

const base = (c: Context<AppEnv>): string => config.publicBaseUrl(c.env, c.req.url);
const json = (schema: z.ZodType, description: string) => ({ content: { "application/json": { schema } }, description });
const Problem = { description: "`application/problem+json` `{title, detail, status}`" };
const tags = ["Replicate"];
const Owner = z.object({ owner: z.string().min(1), name: z.string().min(1) });
const Version = z.looseObject({ id: z.string(), created_at: z.string(), cog_version: z.string(), openapi_schema: z.record(z.string(), z.unknown()) }).openapi("ReplicateVersion");
const Model = z.looseObject({ url: z.string(), owner: z.string(), name: z.string(), visibility: z.string(), run_count: z.number(), latest_version: Version.nullable() }).openapi("ReplicateModel");
const FileSchema = z.looseObject({ id: z.string(), name: z.string(), content_type: z.string(), size: z.number(), urls: z.object({ get: z.string() }) }).openapi("ReplicateFile");

replicateAccount.openapi(
  createRoute({ method: "get", path: "/v1/models/{owner}/{name}", tags, summary: "A model this gateway serves", request: { params: Owner }, responses: { 200: json(Model, "The model"), 401: Problem, 404: Problem } }),
  async (c) => {
    const { owner, name } = c.req.valid("param");
    return c.json(modelObject(base(c), await modelByName(c.env, `${owner}/${name}`)), 200);
  },
);

replicateAccount.openapi(
  createRoute({ method: "get", path: "/v1/models/{owner}/{name}/versions", tags, summary: "A model's versions (one)", request: { params: Owner }, responses: { 200: json(z.object({ next: z.null(), previous: z.null(), results: z.array(Version) }), "Its versions"), 401: Problem, 404: Problem } }),
  async (c) => {
    const { owner, name } = c.req.valid("param");
    return c.json({ next: null, previous: null, results: [versionObject(await modelByName(c.env, `${owner}/${name}`))] }, 200);
  },
);

replicateAccount.openapi(
  createRoute({ method: "get", path: "/v1/models/{owner}/{name}/versions/{id}", tags, summary: "A model version, with its openapi_schema", request: { params: Owner.extend({ id: z.string() }) }, responses: { 200: json(Version, "The version"), 401: Problem, 404: Problem } }),
  async (c) => {
    const { owner, name, id } = c.req.valid("param");
    return c.json(versionObject(await modelByVersion(c.env, `${owner}/${name}:${id}`)), 200);
  },
);

const Deployment = z
  .looseObject({ owner: z.string(), name: z.string(), current_release: z.looseObject({ number: z.number(), model: z.string(), version: z.string(), created_at: z.string() }) })
  .openapi("ReplicateDeployment");
const Account = z.object({ type: z.enum(["user", "organization"]), username: z.string(), name: z.string(), github_url: z.null() }).openapi("ReplicateAccount");

replicateAccount.openapi(
  createRoute({ method: "get", path: "/v1/account", tags, summary: "The account the key belongs to: its tenant", responses: { 200: json(Account, "The account"), 401: Problem } }),
  (c) => c.json({ type: "organization" as const, username: c.var.tenant, name: c.var.tenant, github_url: null }, 200),
);

replicateAccount.openapi(
  createRoute({ method: "get", path: "/v1/deployments", tags, summary: "The deployments this gateway serves (every `owner/name` it lists)", responses: { 200: json(z.object({ next: z.null(), previous: z.null(), results: z.array(Deployment) }), "The deployments"), 401: Problem } }),
  async (c) => c.json({ next: null, previous: null, results: (await listedModels(c.env)).map(deploymentObject) }, 200),
);

replicateAccount.openapi(
  createRoute({ method: "get", path: "/v1/deployments/{owner}/{name}", tags, summary: "A deployment this gateway serves", request: { params: Owner }, responses: { 200: json(Deployment, "The deployment"), 401: Problem, 404: Problem } }),
  async (c) => {
    const { owner, name } = c.req.valid("param");
    return c.json(deploymentObject(await modelByName(c.env, `${owner}/${name}`, "deployment")), 200);
  },
);

replicateAccount.openapi(
  createRoute({ method: "get", path: "/v1/webhooks/default/secret", tags, summary: "The secret that signs this tenant's webhooks", responses: { 200: json(z.object({ key: z.string() }).openapi("ReplicateWebhookSecret"), "`{key}`"), 401: Problem, 404: Problem } }),
  async (c) => {
    const key = config.tenant(c.env, c.var.tenant)?.webhook_secrets[0];
    if (!key) throw new EaselError(404, "not_found", "this account has no webhook signing secret configured");
    return c.json({ key }, 200);
  },
);

replicateAccount.openapi(
  createRoute({
    method: "post",
    path: "/v1/files",
    tags,
    summary: "Upload a file (multipart `content`) to use as an input",
    request: { body: { content: { "multipart/form-data": { schema: z.object({ content: z.unknown().openapi({ type: "string", format: "binary" }), metadata: z.unknown().optional() }) } }, required: true } },
    responses: { 201: json(FileSchema, "The file"), 401: Problem, 422: Problem },
  }),
  async (c) => {
    const type = c.req.header("content-type") ?? "";
    if (!type.toLowerCase().startsWith("multipart/form-data")) throw invalid("content", "send the file as multipart/form-data, in the part named content");
    const { content, metadata } = c.req.valid("form");
    if (!(content instanceof File)) throw invalid("content", "required: the file, as a multipart file part");
    const file = await storeFile(c.env, c.var.tenant, content, await metadataOf(metadata));
    return c.json(fileObject(base(c), file), 201);
  },
);

/** The client's `metadata` part: JSON, as a string or a JSON blob. */
async function metadataOf(part: unknown): Promise<unknown> {
  if (part === null || part === undefined) return {};
  const text = part instanceof Blob ? await part.text() : String(part);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalid("metadata", "not valid JSON");
  }
}

replicateAccount.openapi(
  createRoute({ method: "get", path: "/v1/files/{id}", tags, summary: "A file of this tenant's", request: { params: z.object({ id: z.string() }) }, responses: { 200: json(FileSchema, "The file"), 401: Problem, 404: Problem } }),
  async (c) => c.json(fileObject(base(c), await requireFile(c.env, c.var.tenant, c.req.valid("param").id)), 200),
);

replicateAccount.openapi(
  createRoute({
    method: "get",
    path: "/v1/files/{id}/download",
    tags,
    summary: "A file's bytes",
    request: { params: z.object({ id: z.string() }) },
    responses: { 200: { content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } }, description: "The bytes" }, 401: Problem, 404: Problem },
  }),
  async (c) => {
    const file = await requireFile(c.env, c.var.tenant, c.req.valid("param").id, { bytes: true });
    return c.body(file.bytes ?? new Uint8Array(), 200, { "content-type": file.meta.content_type, "content-disposition": `attachment; filename="${file.meta.name.replace(/[^\w.-]/g, "_")}"` });
  },
);

replicateAccount.openapi(
  createRoute({ method: "delete", path: "/v1/files/{id}", tags, summary: "Delete a file", request: { params: z.object({ id: z.string() }) }, responses: { 204: { description: "Deleted" }, 401: Problem, 404: Problem } }),
  async (c) => {
    await deleteFile(c.env, c.var.tenant, c.req.valid("param").id);
    return c.body(null, 204);
  },
);

/**
 * The rest of a ComfyUI server's surface: files (`/upload/image`, `/view`), the socket (`/ws`), and
 * what the server says of itself (`/object_info`, `/models/checkpoints`, `/system_stats`...).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { CLIENT_ID_HEADER } from "../../contracts/prompts";
import { EaselError, invalid } from "../../errors";
import { sha256Hex } from "../../lib/crypto";
import { sniffImage } from "../../lib/image-sniff";
import { MAX_INIT_IMAGE_BYTES } from "../../jobs/intake";
import { BASES, comfyApp, comfyAuth } from "./auth";
import { checkName, checkSubfolder, fileType, numberedName, parseOutputName, uploadKey } from "./files";
import { checkpoints, objectInfo, serverLists, systemStats } from "./info";
import { MAX_CLIENT_ID } from "./translate";
import { snapshotFor } from "../../jobs/tenant-job";
import { trackerName } from "./prompts";

/** How many `name (n).ext` a clash tries before it gives up. */
const MAX_RENAMES = 100;

export const comfyServer = comfyApp();

const json = (description: string) => ({ content: { "application/json": { schema: z.unknown() } }, description });
const tags = ["ComfyUI"];
const notFound = () => new EaselError(404, "not_found", "no such file");

/** What the gateway's ComfyUI front supports: no preview frames of its own; uploads up to an init image's limit. */
const SERVER_FEATURES = { supports_preview_metadata: false, max_upload_size: MAX_INIT_IMAGE_BYTES };

/** A check's refusal (a 422 naming the field) answered with another status, as ComfyUI answers that read. */
function refusedAs<T>(status: 400 | 403, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof EaselError && err.status === 422) throw new EaselError(status, status === 403 ? "forbidden" : "bad_request", err.message, err.details);
    throw err;
  }
}

const UploadSchema = z.object({
  image: z.instanceof(File).openapi({ type: "string", format: "binary" }),
  overwrite: z.string().optional(),
  subfolder: z.string().optional(),
  type: z.string().optional(),
});

for (const base of BASES) {
  comfyServer.openapi(
    createRoute({
      method: "post",
      path: `${base}/upload/image`,
      tags,
      summary: "Keep an input image for the tenant's later prompts (a LoadImage node names it)",
      middleware: [comfyAuth] as const,
      request: { body: { content: { "multipart/form-data": { schema: UploadSchema } }, required: true } },
      responses: { 200: json("`{name, subfolder, type}`"), 422: json("a bad name, subfolder or image") },
    }),
    async (c) => {
      const form = c.req.valid("form");
      const type = fileType(form.type, "type", "input");
      const subfolder = checkSubfolder(form.subfolder ?? "", "subfolder");
      const given = checkName(form.image.name, "image");
      if (form.image.size > MAX_INIT_IMAGE_BYTES) throw new EaselError(413, "payload_too_large", `image: over ${MAX_INIT_IMAGE_BYTES} bytes`);
      const bytes = new Uint8Array(await form.image.arrayBuffer());
      const sniffed = sniffImage(bytes);
      if (!sniffed) throw new EaselError(422, "invalid_image", "image: not a PNG, JPEG or WebP image", [{ path: "image", message: "not a PNG, JPEG or WebP image" }]);
      const overwrite = form.overwrite === "true" || form.overwrite === "1";
      const sha256 = await sha256Hex(bytes);
      const stored = { httpMetadata: { contentType: sniffed.contentType }, customMetadata: { sha256 } };
      let name = given;
      for (let n = 1; ; n++) {
        const key = uploadKey(c.var.tenant, type, subfolder, name);
        if (overwrite) {
          await c.env.IMAGES.put(key, bytes, stored);
          break;
        }
        // Only where nothing is: two uploads of one name at once never both take it, as ComfyUI's
        // loop runs without a pause. A file of that name with the same bytes is the one uploaded.
        if (await c.env.IMAGES.put(key, bytes, { ...stored, onlyIf: new Headers({ "if-none-match": "*" }) })) break;
        if ((await c.env.IMAGES.head(key))?.customMetadata?.sha256 === sha256) break;
        if (n > MAX_RENAMES) throw invalid("image", "too many files of this name");
        name = numberedName(given, n);
      }
      return c.json({ name, subfolder, type }, 200);
    },
  );

  comfyServer.openapi(
    createRoute({
      method: "get",
      path: `${base}/view`,
      tags,
      summary: "A file's bytes: the tenant's own outputs and uploads only",
      middleware: [comfyAuth] as const,
      request: { query: z.object({ filename: z.string().max(256), subfolder: z.string().max(512).optional(), type: z.string().optional() }) },
      responses: { 200: { description: "the image" }, 404: json("no such file") },
    }),
    async (c) => {
      const q = c.req.valid("query");
      // As ComfyUI's annotated_filepath: `name.png [output]` says the type, whatever `type` says.
      const annotated = /^(.*?)\s*\[(input|output|temp)\]$/.exec(q.filename);
      // A read, so ComfyUI's own answers: 400 for a bad type or name, 403 for a subfolder outside.
      const type = refusedAs(400, () => fileType(annotated?.[2] ?? q.type, "type", "output"));
      const filename = refusedAs(400, () => checkName(annotated?.[1] ?? q.filename, "filename"));
      const subfolder = refusedAs(403, () => checkSubfolder(q.subfolder ?? "", "subfolder"));
      const output = type === "output" && subfolder === "" ? parseOutputName(filename) : undefined;
      let key = uploadKey(c.var.tenant, type, subfolder, filename);
      if (output) {
        // The job answers only to its own tenant: another tenant's name finds nothing.
        const snapshot = await snapshotFor(c.env, output.runId, c.var.tenant);
        const found = snapshot?.input.dialect === "comfyui" ? snapshot.output_keys[output.index] : undefined;
        if (!found) throw notFound();
        key = found;
      }
      const obj = await c.env.IMAGES.get(key);
      if (!obj) throw notFound();
      return c.body(obj.body, 200, { "content-type": obj.httpMetadata?.contentType ?? "application/octet-stream", "content-length": String(obj.size) });
    },
  );

  comfyServer.openapi(
    createRoute({
      method: "get",
      path: `${base}/ws`,
      tags,
      summary: "The WebSocket of ComfyUI's messages, for the tenant's prompts queued with this clientId",
      middleware: [comfyAuth] as const,
      request: { query: z.object({ clientId: z.string().max(MAX_CLIENT_ID).optional(), token: z.string().optional() }) },
      responses: { 101: { description: "switching to the WebSocket" }, 426: json("not a WebSocket upgrade") },
    }),
    async (c) => {
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") throw new EaselError(426, "upgrade_required", "GET /ws is a WebSocket");
      const headers = new Headers(c.req.raw.headers);
      headers.set(CLIENT_ID_HEADER, c.req.valid("query").clientId || crypto.randomUUID().replaceAll("-", ""));
      const ns = c.env.JOB_SUBSCRIBERS;
      return ns.get(ns.idFromName(trackerName(c.var.tenant))).fetch(new Request(c.req.raw, { headers }));
    },
  );

  comfyServer.openapi(
    createRoute({ method: "get", path: `${base}/object_info`, tags, summary: "Node definitions of the ComfyUI backends", middleware: [comfyAuth] as const, responses: { 200: json("`{<class>: {input, output, ...}}`") } }),
    async (c) => c.json(await objectInfo(c.env), 200),
  );

  comfyServer.openapi(
    createRoute({
      method: "get",
      path: `${base}/object_info/{node_class}`,
      tags,
      summary: "One node's definition (`{}` for a class no backend has)",
      middleware: [comfyAuth] as const,
      request: { params: z.object({ node_class: z.string().max(256) }) },
      responses: { 200: json("`{<class>: {...}}` or `{}`") },
    }),
    async (c) => {
      const { node_class } = c.req.valid("param");
      const def = (await objectInfo(c.env))[node_class];
      return c.json(def ? { [node_class]: def } : {}, 200);
    },
  );

  comfyServer.openapi(
    createRoute({ method: "get", path: `${base}/models/checkpoints`, tags, summary: "The ComfyUI backends' checkpoints", middleware: [comfyAuth] as const, responses: { 200: json("file names") } }),
    async (c) => c.json(await checkpoints(c.env), 200),
  );

  comfyServer.openapi(
    createRoute({ method: "get", path: `${base}/system_stats`, tags, summary: "`{system, devices}`", middleware: [comfyAuth] as const, responses: { 200: json("`{system, devices}`") } }),
    (c) => c.json(systemStats(), 200),
  );

  comfyServer.openapi(
    createRoute({ method: "get", path: `${base}/models`, tags, summary: "The model folders of the ComfyUI backends", middleware: [comfyAuth] as const, responses: { 200: json("folder names") } }),
    async (c) => c.json((await serverLists(c.env, "/models")) ?? ["checkpoints"], 200),
  );

  comfyServer.openapi(
    createRoute({
      method: "get",
      path: `${base}/models/{folder}`,
      tags,
      summary: "A model folder's files on the ComfyUI backends (404 for a folder none has)",
      middleware: [comfyAuth] as const,
      request: { params: z.object({ folder: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) }) },
      responses: { 200: json("file names"), 404: json("no such folder") },
    }),
    async (c) => {
      const list = await serverLists(c.env, `/models/${c.req.valid("param").folder}`);
      if (!list) throw new EaselError(404, "not_found", "no such model folder");
      return c.json(list, 200);
    },
  );

  comfyServer.openapi(
    createRoute({ method: "get", path: `${base}/embeddings`, tags, summary: "The embeddings of the ComfyUI backends", middleware: [comfyAuth] as const, responses: { 200: json("names") } }),
    async (c) => c.json((await serverLists(c.env, "/embeddings")) ?? [], 200),
  );

  comfyServer.openapi(
    createRoute({ method: "get", path: `${base}/extensions`, tags, summary: "The web extensions (none: the gateway serves no ComfyUI front end)", middleware: [comfyAuth] as const, responses: { 200: json("a list") } }),
    (c) => c.json([], 200),
  );

  comfyServer.openapi(
    createRoute({ method: "get", path: `${base}/features`, tags, summary: "The server's feature flags, as ComfyUI's feature_flags.py answers them", middleware: [comfyAuth] as const, responses: { 200: json("`{supports_preview_metadata, max_upload_size}`") } }),
    (c) => c.json(SERVER_FEATURES, 200),
  );
}

import { createRoute, z } from "@hono/zod-openapi";
import { createApp } from "../app";
import { config } from "../config";
import { EaselError } from "../errors";
import { outputKeyFromPath, verifyOutputLink } from "../storage/links";

export const outputs = createApp();
outputs.openapi(
  createRoute({
    method: "get",
    path: "/v1/outputs/{file}",
    summary: "Download an output image (signed link, no API key)",
    request: {
      params: z.object({ file: z.string() }),
      // Given twice, either is a link that was tampered with: a 403 below, not a 422 here.
      query: z.object({ expires: z.union([z.string(), z.array(z.string())]).optional(), sig: z.union([z.string(), z.array(z.string())]).optional() }),
    },
    responses: {
      200: { content: { "image/png": { schema: z.string().openapi({ format: "binary" }) } }, description: "The image" },
      403: { description: "Bad or expired signature" },
      404: { description: "No such image" },
    },
  }),
  async (c) => {
    const { file } = c.req.valid("param");
    const query = c.req.valid("query");
    const expires = typeof query.expires === "string" ? query.expires : undefined;
    const sig = typeof query.sig === "string" ? query.sig : undefined;
    // Read first: with no key configured every link is a 500 naming it, not a 403 blaming the link.
    const secrets = config.urlSigningSecrets(c.env);
    const key = outputKeyFromPath(file);
    // A link with its signature or expiry missing, wrong or moved is a 403 like any other bad link.
    if (!key || expires === undefined || sig === undefined || !(await verifyOutputLink(secrets, key, expires, sig))) {
      throw new EaselError(403, "invalid_signature", "the link is invalid or has expired");
    }
    return download(c.env.IMAGES, key, c.req.raw.headers);
  },
);

/**
 * The object as a file server answers it (RFC 9110 §13.2.2): its length; a failed `If-Match` or
 * `If-Unmodified-Since` as a 412; a matching `If-None-Match` (or an unchanged `If-Modified-Since`)
 * as a 304; then a `Range` as a 206 (R2 reads only that part), unless an `If-Range` names another
 * version. Preconditions are read here, leniently: one that does not parse is ignored, never a 500.
 */
async function download(bucket: R2Bucket, key: string, request: Headers): Promise<Response> {
  // A plain GET (a thumbnail, a webhook's link) is one read; only a conditional or partial one looks first.
  if (!CONDITIONAL.some((name) => request.has(name))) {
    const obj = await bucket.get(key);
    if (!obj) throw new EaselError(404, "not_found", "image not found");
    const headers = fileHeaders(obj);
    headers.set("content-length", String(obj.size));
    return new Response(obj.body, { headers });
  }
  const head = await bucket.head(key);
  if (!head) throw new EaselError(404, "not_found", "image not found");
  const etag = head.httpEtag;
  const headers = fileHeaders(head);
  const tags = (name: string) => request.get(name)?.split(",").map((t) => t.trim());
  const seconds = (name: string) => Math.floor(Date.parse(request.get(name) ?? "") / 1000);
  const uploaded = Math.floor(head.uploaded.getTime() / 1000);
  const ifMatch = tags("if-match");
  if (ifMatch ? !ifMatch.some((t) => t === "*" || t === etag) : uploaded > seconds("if-unmodified-since")) return new Response(null, { status: 412, headers });
  const ifNoneMatch = tags("if-none-match");
  if (ifNoneMatch ? ifNoneMatch.some((t) => t === "*" || t.replace(/^W\//, "") === etag) : uploaded <= seconds("if-modified-since")) return new Response(null, { status: 304, headers });
  const ifRange = request.get("if-range");
  const range = request.has("range") && (ifRange === null || ifRange.trim() === etag) ? parseRange(request.get("range") ?? "", head.size) : undefined;
  if (range === null) {
    headers.set("content-range", `bytes */${head.size}`);
    return new Response(null, { status: 416, headers });
  }
  const obj = await bucket.get(key, range ? { range } : {});
  if (!obj) throw new EaselError(404, "not_found", "image not found");
  if (!range) {
    headers.set("content-length", String(obj.size));
    return new Response(obj.body, { headers });
  }
  headers.set("content-length", String(range.length));
  headers.set("content-range", `bytes ${range.offset}-${range.offset + range.length - 1}/${obj.size}`);
  return new Response(obj.body, { status: 206, headers });
}

const CONDITIONAL = ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "range"];

const fileHeaders = (obj: R2Object): Headers =>
  new Headers({ "content-type": obj.httpMetadata?.contentType ?? "image/png", "cache-control": "private, max-age=3600", etag: obj.httpEtag, "accept-ranges": "bytes" });

/** One `bytes=` range of a `size`-byte file; undefined for a header this does not serve (the whole file goes), null when it asks past the end. */
function parseRange(header: string, size: number): { offset: number; length: number } | undefined | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Math.min(Number(m[2]), size);
    return suffix > 0 ? { offset: size - suffix, length: suffix } : null;
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return null;
  return { offset: start, length: end - start + 1 };
}

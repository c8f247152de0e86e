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
    const obj = await c.env.IMAGES.get(key);
    if (!obj) throw new EaselError(404, "not_found", "image not found");
    return new Response(obj.body, {
      headers: { "content-type": obj.httpMetadata?.contentType ?? "image/png", "cache-control": "private, max-age=3600", etag: obj.httpEtag },
    });
  },
);

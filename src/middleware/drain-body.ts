import { createMiddleware } from "hono/factory";

export interface DrainBodyOptions {
  /** Bodies declared longer than this are left alone; a body without a length is read up to it. */
  maxBytes: number;
}

/**
 * Reads the rest of a request body the handler answered without reading (a 401 or 404 before the
 * body). Under wrangler dev, unread bytes left on the proxy's pooled connection failed the next
 * request on it, whoever sent it, with a 503 "worker restarted" (34 of 400 after a 401). A body
 * declared over the limit is not touched: workerd gives up that connection cleanly, while one
 * read in part and then canceled broke every request after it.
 */
export const drainBody = (opts: DrainBodyOptions) =>
  createMiddleware(async (c, next) => {
    await next();
    const req = c.req.raw;
    if (!req.body || req.bodyUsed) return;
    if (Number(req.headers.get("content-length") ?? 0) > opts.maxBytes) return;
    let read = 0;
    try {
      const reader = req.body.getReader();
      while (read <= opts.maxBytes) {
        const chunk = await reader.read();
        if (chunk.done) return;
        read += chunk.value.byteLength;
      }
      await reader.cancel();
    } catch {
      // A client that hung up, or a body locked by a consumer: nothing left to keep.
    }
  });

import { AwsClient } from "aws4fetch";
import { EaselError } from "../errors";

export interface S3Config {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

const fieldError = (code: string, field: string, message: string) => new EaselError(422, code, `${field}: ${message}`, [{ path: field, message }]);

/**
 * Reads `s3://bucket/key` from the configured S3-compatible store (path-style, SigV4 signed),
 * bounded in time and size like any other image the gateway fetches.
 */
export async function readS3Object(link: string, s3: S3Config | undefined, opts: { field: string; maxBytes: number; timeoutMs?: number }): Promise<Uint8Array> {
  const m = link.match(/^s3:\/\/([^/]+)\/(.+)$/);
  if (!m?.[1] || !m[2]) throw fieldError("invalid_url", opts.field, "expected s3://bucket/key");
  if (!s3) throw fieldError("s3_not_configured", opts.field, "this gateway has no S3 store configured");
  const client = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, service: "s3" });
  const url = `${s3.endpoint.replace(/\/+$/, "")}/${encodeURIComponent(m[1])}/${m[2].split("/").map(encodeURIComponent).join("/")}`;
  let res: Response;
  try {
    res = await client.fetch(url, { method: "GET", signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000) });
  } catch {
    throw fieldError("image_fetch_failed", opts.field, "the S3 store could not be reached");
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw fieldError("image_fetch_failed", opts.field, `the S3 store answered ${res.status}`);
  }
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > opts.maxBytes) throw fieldError("image_too_large", opts.field, `image is over ${opts.maxBytes} bytes`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.byteLength > opts.maxBytes) throw fieldError("image_too_large", opts.field, `image is over ${opts.maxBytes} bytes`);
  return bytes;
}

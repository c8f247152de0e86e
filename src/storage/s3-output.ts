/**
 * Outputs written to the operator's S3 bucket (`S3_OUTPUT_BUCKET`), for clients that read the
 * bucket itself (SD-on-EKS's). Keys follow SD-on-EKS's queue agent: `<prefix>/<stem>-<n>.<ext>`
 * per image (n from 1) and `<prefix>/<stem>.out` for the manifest, where stem is `<id>-<rand>`.
 */
import { z } from "@hono/zod-openapi";
import { AwsClient } from "aws4fetch";
import type { S3Config } from "../lib/s3-fetch";
import { keyPathProblem } from "../lib/storage-key";
import { withDeadline } from "../lib/deadline";

export const S3OutputSchema = z.object({ bucket: z.string().min(1), prefix: z.string().min(1), stem: z.string().min(1) });
export type S3Output = z.infer<typeof S3OutputSchema>;

/** The extension Python's `mimetypes` gives, as SD-on-EKS names its files. */
const EXTENSIONS: Record<string, string> = { "image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp" };

export const s3ImageKey = (out: S3Output, index: number, contentType: string): string => `${out.prefix}/${out.stem}-${index + 1}${EXTENSIONS[contentType] ?? ".png"}`;
export const s3ManifestKey = (out: S3Output): string => `${out.prefix}/${out.stem}.out`;
export const s3Url = (out: S3Output, key: string): string => `s3://${out.bucket}/${key}`;

const PUT_TIMEOUT_MS = 30_000;
/** A PUT is idempotent: a store's passing trouble (no answer, a 5xx, a 429) is tried again, a few times. */
const PUT_RETRY_DELAYS_MS = [500, 2_000];

const transient = (status: number): boolean => status >= 500 || status === 429 || status === 408;

/** One signed (SigV4, path-style) PUT; any answer but a 2xx, once the retries are spent, is an error. */
export async function putS3Object(s3: S3Config, bucket: string, key: string, body: Uint8Array | string, contentType: string): Promise<void> {
  // Checked at intake with the client's field named; here too, as no key may reach a URL unchecked.
  const problem = keyPathProblem(`${bucket}/${key}`);
  if (problem) throw new Error(`S3 PUT refused: the bucket or key ${problem}`);
  const client = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, service: "s3" });
  const url = `${s3.endpoint.replace(/\/+$/, "")}/${encodeURIComponent(bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`;
  const put = () =>
    withDeadline(PUT_TIMEOUT_MS, async (signal) => {
      const answer = await client.fetch(url, { method: "PUT", body, headers: { "content-type": contentType }, signal });
      await answer.body?.cancel().catch(() => undefined);
      return answer.status;
    });
  let failure = "";
  for (const delay of [0, ...PUT_RETRY_DELAYS_MS]) {
    if (delay) await new Promise((r) => setTimeout(r, delay));
    const status = await put().catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
    if (typeof status === "number" && status >= 200 && status < 300) return;
    failure = typeof status === "number" ? `answered ${status}` : `failed: ${status}`;
    if (typeof status === "number" && !transient(status)) break;
  }
  throw new Error(`S3 PUT ${bucket}/${key} ${failure}`);
}

/** What a manifest is written for: the job's outputs, or why it failed. */
export type ManifestResult = { ok: true; outputs: { width: number; height: number; seed: number | null }[] } | { ok: false; message: string };

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

/**
 * How hard a PUT tries. aws4fetch tries a 5xx or 429 again itself (a PUT is idempotent), backing off,
 * for as long as the timeout allows; a best-effort write on a cancel's way (a failure manifest)
 * tries once, briefly.
 */
export interface PutEffort {
  timeoutMs: number;
  retries: number;
}
export const FULL_EFFORT: PutEffort = { timeoutMs: 30_000, retries: 10 };
export const BRIEF_EFFORT: PutEffort = { timeoutMs: 5_000, retries: 0 };

/** One signed (SigV4, path-style) PUT; any answer but a 2xx is an error. */
export async function putS3Object(s3: S3Config, bucket: string, key: string, body: Uint8Array | string, contentType: string, effort: PutEffort = FULL_EFFORT): Promise<void> {
  // Checked at intake with the client's field named; here too, as no key may reach a URL unchecked.
  const problem = keyPathProblem(`${bucket}/${key}`);
  if (problem) throw new Error(`S3 PUT refused: the bucket or key ${problem}`);
  const client = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, service: "s3", retries: effort.retries });
  const url = `${s3.endpoint.replace(/\/+$/, "")}/${encodeURIComponent(bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`;
  const res = await withDeadline(effort.timeoutMs, async (signal) => {
    const answer = await client.fetch(url, { method: "PUT", body, headers: { "content-type": contentType }, signal });
    await answer.body?.cancel().catch(() => undefined);
    return answer;
  });
  if (!res.ok) throw new Error(`S3 PUT ${bucket}/${key} answered ${res.status}`);
}

/** What a manifest is written for: the job's outputs, or why it failed. */
export type ManifestResult = { ok: true; outputs: { width: number; height: number; seed: number | null }[] } | { ok: false; message: string };

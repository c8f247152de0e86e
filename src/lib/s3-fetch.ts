/** Reads `s3://bucket/key` image links from the configured S3-compatible store (SD-on-EKS inputs). */
import { AwsClient } from "aws4fetch";
import { EaselError } from "../errors";
import { readImageInput, type ImageInput } from "./image-input";
import { keyPathProblem } from "./storage-key";

export interface S3Config {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** Whether `bucket/key` lies under one of the tenant's `s3_read_prefixes` (`bucket/prefix/`). */
export const allowedS3Object = (object: string, prefixes: readonly string[]): boolean => prefixes.some((p) => object.startsWith(p));

export const isS3Link = (value: string): boolean => /^s3:\/\//i.test(value.trim());

const fieldError = (code: string, field: string, message: string) => new EaselError(422, code, `${field}: ${message}`, [{ path: field, message }]);

/**
 * GETs the object path-style, SigV4-signed, through the same reader every image URL goes through: bounded in
 * time and size, and checked to be a real image. The endpoint is operator configuration, so it
 * may be private, as backend URLs may.
 */
export async function readS3Image(
  link: string,
  s3: S3Config | undefined,
  opts: { field: string; maxBytes: number; timeoutMs?: number; allowedPrefixes: readonly string[] },
): Promise<ImageInput> {
  const m = link.trim().match(/^s3:\/\/([^/]+)\/(.+)$/i);
  if (!m?.[1] || !m[2]) throw fieldError("invalid_url", opts.field, "expected s3://bucket/key");
  // A URL normalizes "." and ".." segments away, which would walk out of an allowed prefix.
  const problem = keyPathProblem(`${m[1]}/${m[2]}`);
  if (problem) throw fieldError("invalid_url", opts.field, `the bucket or key ${problem}`);
  // The operator's credentials read for every tenant: only where this tenant may point, before S3 is asked.
  if (!allowedS3Object(`${m[1]}/${m[2]}`, opts.allowedPrefixes)) throw fieldError("s3_forbidden", opts.field, "this account may not read that S3 location");
  if (!s3) throw fieldError("s3_not_configured", opts.field, "this gateway has no S3 store configured");
  const client = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, service: "s3" });
  const url = `${s3.endpoint.replace(/\/+$/, "")}/${encodeURIComponent(m[1])}/${m[2].split("/").map(encodeURIComponent).join("/")}`;
  return readImageInput(url, { ...opts, allowPrivate: true, fetcher: (_url: RequestInfo | URL, init?: RequestInit) => client.fetch(url, init) });
}

/** Reads `s3://bucket/key` image links from the configured S3-compatible store (SD-on-EKS inputs). */
import { AwsClient } from "aws4fetch";
import { EaselError } from "../errors";
import { readImageInput, type ImageInput } from "./image-input";

export interface S3Config {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export const isS3Link = (value: string): boolean => /^s3:\/\//i.test(value.trim());

const fieldError = (code: string, field: string, message: string) => new EaselError(422, code, `${field}: ${message}`, [{ path: field, message }]);

/**
 * GETs the object path-style, SigV4-signed, through the same reader every image URL goes through: bounded in
 * time and size, and checked to be a real image. The endpoint is operator configuration, so it
 * may be private, as backend URLs may.
 */
export async function readS3Image(link: string, s3: S3Config | undefined, opts: { field: string; maxBytes: number; timeoutMs?: number }): Promise<ImageInput> {
  const m = link.trim().match(/^s3:\/\/([^/]+)\/(.+)$/i);
  if (!m?.[1] || !m[2]) throw fieldError("invalid_url", opts.field, "expected s3://bucket/key");
  if (!s3) throw fieldError("s3_not_configured", opts.field, "this gateway has no S3 store configured");
  const client = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, service: "s3" });
  const url = `${s3.endpoint.replace(/\/+$/, "")}/${encodeURIComponent(m[1])}/${m[2].split("/").map(encodeURIComponent).join("/")}`;
  return readImageInput(url, { ...opts, allowPrivate: true, fetcher: (_url: RequestInfo | URL, init?: RequestInit) => client.fetch(url, init) });
}

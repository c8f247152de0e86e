import type { StoredJobInput } from "../jobs/spec";
import type { ManifestResult } from "../storage/s3-output";
import { eksManifest } from "./eks/translate";

/**
 * The manifest written beside a job's outputs in S3, in the shape of the dialect the job came in
 * through, or null when that dialect writes none. Only SD-on-EKS does (its `.out` file).
 */
export function renderOutputManifest(input: StoredJobInput, result: ManifestResult): string | null {
  return input.dialect === "eks" ? JSON.stringify(eksManifest(input, result)) : null;
}

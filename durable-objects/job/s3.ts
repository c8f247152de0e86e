/**
 * Where the job asks for it (SD-on-EKS with `S3_OUTPUT_BUCKET`), the images and then the dialect's
 * manifest go to the operator's S3 bucket, before the job succeeds: its notification names them.
 */
import { config } from "../../src/config";
import { renderOutputManifest } from "../../src/contracts/renderers";
import type { Env } from "../../src/env";
import type { StoredJobInput } from "../../src/jobs/spec";
import type { JobError } from "../../src/schemas/job";
import { getImageBytes } from "../../src/storage/images";
import { putS3Object, s3ImageKey, s3ManifestKey } from "../../src/storage/s3-output";
import type { StoredOutput } from "./tables";
import { fullInput } from "./view";

/** One image at a time, read back from R2: the job never holds all of its outputs' bytes. */
export async function writeS3Outputs(env: Env, input: StoredJobInput, outputs: StoredOutput[]): Promise<void> {
  const out = input.s3_output;
  if (!out) return;
  const s3 = config.s3(env);
  if (!s3) throw new Error("no S3 store is configured (S3_ENDPOINT...)");
  for (const [i, output] of outputs.entries()) {
    const bytes = await getImageBytes(env.IMAGES, output.key);
    if (!bytes) throw new Error(`output ${i} is missing from storage`);
    await putS3Object(s3, out.bucket, s3ImageKey(out, i, output.content_type), bytes, output.content_type);
  }
  const manifest = renderOutputManifest(await fullInput(env, input), { ok: true, outputs });
  if (manifest !== null) await putS3Object(s3, out.bucket, s3ManifestKey(out), manifest, "application/json");
}

/** A failed job's manifest still goes to S3, as SD-on-EKS writes one either way; best effort. */
export async function writeS3FailureManifest(env: Env, input: StoredJobInput, error: JobError): Promise<void> {
  const out = input.s3_output;
  const s3 = config.s3(env);
  if (!out || !s3) return;
  const manifest = renderOutputManifest(await fullInput(env, input), { ok: false, message: error.message });
  if (manifest === null) return;
  await putS3Object(s3, out.bucket, s3ManifestKey(out), manifest, "application/json").catch((err: unknown) => console.error("S3 failure manifest not written", err instanceof Error ? err.message : String(err)));
}

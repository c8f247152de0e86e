/**
 * What a job's dialect keeps beside its outputs (SD-on-EKS's): with `S3_OUTPUT_BUCKET`, the images
 * and then the dialect's manifest in the operator's bucket; else the manifest in R2, in the job's
 * place. Written before the job ends: its notification names them.
 */
import { config } from "../../src/config";
import { hasOutputManifest, renderOutputManifest } from "../../src/contracts/renderers";
import type { Env } from "../../src/env";
import type { StoredJobInput } from "../../src/jobs/spec";
import { getImageBytes, manifestKey } from "../../src/storage/images";
import { BRIEF_EFFORT, FULL_EFFORT, putS3Object, s3ImageKey, s3ManifestKey, type ManifestResult, type PutEffort } from "../../src/storage/s3-output";
import type { JobRow, StoredOutput } from "./tables";
import { fullInput } from "./view";

/** The manifest, where the job's outputs are: S3 when they go there, else R2. */
async function putManifest(env: Env, input: StoredJobInput, result: ManifestResult, effort: PutEffort): Promise<void> {
  if (!hasOutputManifest(input.dialect)) return;
  const manifest = renderOutputManifest(await fullInput(env, input), result);
  if (manifest === null) return;
  const out = input.s3_output;
  if (!out) {
    await env.IMAGES.put(manifestKey(input.output_prefix), manifest, { httpMetadata: { contentType: "application/json" } });
    return;
  }
  const s3 = config.s3(env);
  if (!s3) throw new Error("no S3 store is configured (S3_ENDPOINT...)");
  await putS3Object(s3, out.bucket, s3ManifestKey(out), manifest, "application/json", effort);
}

/** Undefined while the attempt that made the outputs is the job's; once the job ended otherwise (a cancel), the message its manifest carries. */
export type EndedMeanwhile = () => string | undefined;

/**
 * One image at a time, read back from R2: the job never holds all of its outputs' bytes. A job that
 * ended meanwhile (a cancel, while the writes took their time) gets no more of them: its own
 * manifest says how it ended, and it stays the last one written.
 */
export async function writeDialectOutputs(env: Env, input: StoredJobInput, outputs: StoredOutput[], endedMeanwhile: EndedMeanwhile): Promise<void> {
  const out = input.s3_output;
  if (out) {
    const s3 = config.s3(env);
    if (!s3) throw new Error("no S3 store is configured (S3_ENDPOINT...)");
    for (const [i, output] of outputs.entries()) {
      if (endedMeanwhile() !== undefined) return;
      const bytes = await getImageBytes(env.IMAGES, output.key);
      if (!bytes) throw new Error(`output ${i} is missing from storage`);
      await putS3Object(s3, out.bucket, s3ImageKey(out, i, output.content_type), bytes, output.content_type);
    }
  }
  if (endedMeanwhile() !== undefined) return;
  await putManifest(env, input, { ok: true, outputs }, FULL_EFFORT);
  // A cancel that landed during that write wrote its own manifest first: the end's goes last.
  const ended = endedMeanwhile();
  if (ended !== undefined) await writeFailureManifest(env, input, ended);
}

/**
 * A failed or canceled job's manifest is still written, as SD-on-EKS writes one either way; best
 * effort, tried once: a cancel's answer waits for it.
 */
export async function writeFailureManifest(env: Env, input: StoredJobInput, message: string): Promise<void> {
  await putManifest(env, input, { ok: false, message }, BRIEF_EFFORT).catch((err: unknown) => console.error("failure manifest not written", err instanceof Error ? err.message : String(err)));
}

/** How an ended job's manifest words its end: a cancel, or its error's message. */
export function endMessage(row: Pick<JobRow, "status" | "error">): string {
  if (row.status === "canceled" || row.error === null) return row.status;
  const error = JSON.parse(row.error) as { message?: string };
  return error.message ?? row.status;
}

/**
 * The ended job's manifest, written again by an end that lost the race to it. Each end writes its
 * manifest before it commits (a cancel's while the success commits, say), so the loser's may land
 * after the winner's; the loser's PUT is over by now, so this one is the last.
 */
export async function restoreEndManifest(env: Env, input: StoredJobInput, row: JobRow): Promise<void> {
  const result: ManifestResult = row.status === "succeeded" ? { ok: true, outputs: JSON.parse(row.output) as StoredOutput[] } : { ok: false, message: endMessage(row) };
  await putManifest(env, input, result, FULL_EFFORT).catch((err: unknown) => console.error("end manifest not restored", err instanceof Error ? err.message : String(err)));
}

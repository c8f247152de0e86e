/** A job's output images as the dialects hand them out: base64 strings, or signed download links. */
import { config } from "../config";
import type { Env } from "../env";
import type { JobSnapshot } from "../jobs/results";
import { signedOutputUrl } from "../storage/links";
import { fixedLength } from "../lib/json-slots";
import { slottedStream, withOutputSlots, type Base64Image } from "../webhooks/body-slots";

/**
 * How a renderer gets the images as base64: as places (`outputPlaces`) that an answer
 * (`jsonWithImages`) or the webhook outbox fills from R2 as the body is sent, so no image's text
 * is ever held whole and none lands in Durable Object storage.
 */
export type ImagesAsBase64 = (snapshot: JobSnapshot) => Promise<Base64Image[]>;

export const JSON_HEADERS = { "content-type": "application/json" } as const;

/** A dialect's JSON answer, its image places (indexes into `outputKeys`) streamed from R2 as base64 while it is sent. */
export async function jsonWithImages(env: Env, outputKeys: string[], value: unknown): Promise<ReadableStream<Uint8Array>> {
  return fixedLength(await slottedStream(env.IMAGES, withOutputSlots(value), outputKeys));
}

/** A signed download link to one of the job's files in R2, good no longer than the job is kept. */
export async function signedLink(env: Env, snapshot: JobSnapshot, key: string): Promise<string> {
  const [secret] = config.urlSigningSecrets(env);
  const ended = snapshot.job.completed_at === null ? undefined : Date.parse(snapshot.job.completed_at) + config.retentionMs(env);
  return signedOutputUrl(snapshot.input.public_base_url, secret, key, Date.now(), ended);
}

export const outputUrls = (env: Env, snapshot: JobSnapshot): Promise<string[]> => Promise.all(snapshot.output_keys.map((key) => signedLink(env, snapshot, key)));

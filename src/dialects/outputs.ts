/** A job's output images as the dialects hand them out: base64 strings, or signed download links. */
import { config } from "../config";
import type { Env } from "../env";
import type { JobSnapshot } from "../jobs/results";
import { bytesToBase64 } from "../lib/base64";
import { signedOutputUrl } from "../storage/links";
import type { Base64Image } from "../webhooks/body-slots";

/**
 * How a renderer gets the images as base64: read from R2 now (a response), or as places the
 * webhook outbox fills in at each attempt (`outputPlaces`), so no image lands in Durable Object storage.
 */
export type ImagesAsBase64 = (snapshot: JobSnapshot) => Promise<Base64Image[]>;

export const outputsBase64 =
  (env: Env): ImagesAsBase64 =>
  (snapshot) =>
    Promise.all(
      snapshot.output_keys.map(async (key) => {
        const obj = await env.IMAGES.get(key);
        return obj ? bytesToBase64(new Uint8Array(await obj.arrayBuffer())) : "";
      }),
    );

export async function outputUrls(env: Env, snapshot: JobSnapshot): Promise<string[]> {
  const secret = config.urlSigningSecret(env);
  return Promise.all(snapshot.output_keys.map((key) => signedOutputUrl(snapshot.input.public_base_url, secret, key)));
}

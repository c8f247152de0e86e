import { bytesToBase64 } from "../lib/base64";

/**
 * Webhook bodies that carry images (Cerebrium, RunPod, ModelsLab with base64) keep only a
 * reference to each R2 object in the outbox: images live in R2, never in Durable Object storage.
 * The reference is expanded at every attempt from the same bytes, so the body sent (and signed)
 * is the same each time.
 */
const MARKER = "\u0000easel-r2:";

export const imageRef = (key: string): string => MARKER + key;

/** Every reference in a serialized body; JSON writes the marker's NUL as \\u0000. */
const REF_IN_JSON = /"\\u0000easel-r2:((?:[^"\\]|\\.)*)"/g;

export async function expandImageRefs(bucket: R2Bucket, body: string): Promise<string> {
  const keys = [...body.matchAll(REF_IN_JSON)].map((m) => JSON.parse(`"${m[1] ?? ""}"`) as string);
  if (!keys.length) return body;
  const data = new Map<string, string>();
  await Promise.all(
    keys.map(async (key) => {
      const obj = await bucket.get(key);
      data.set(key, obj ? bytesToBase64(new Uint8Array(await obj.arrayBuffer())) : "");
    }),
  );
  return body.replace(REF_IN_JSON, (_all, raw: string) => `"${data.get(JSON.parse(`"${raw}"`) as string) ?? ""}"`);
}

export const imageRefs = async (snapshot: { output_keys: string[] }): Promise<string[]> => snapshot.output_keys.map(imageRef);

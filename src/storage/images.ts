import { sniffImage } from "../lib/image-sniff";

export const inputKey = (jobId: string): string => `inputs/${jobId}/init`;
export const passThroughKey = (jobId: string): string => `inputs/${jobId}/pass-through.json`;
export const outputKey = (prefix: string, index: number): string => `${prefix}/image_${index}.png`;

export interface StoredImage {
  key: string;
  content_type: string;
  width: number;
  height: number;
}

export async function putImage(bucket: R2Bucket, key: string, bytes: Uint8Array): Promise<StoredImage> {
  const sniffed = sniffImage(bytes);
  const content_type = sniffed?.contentType ?? "application/octet-stream";
  await bucket.put(key, bytes, { httpMetadata: { contentType: content_type } });
  return { key, content_type, width: sniffed?.width ?? 0, height: sniffed?.height ?? 0 };
}

export async function getImageBytes(bucket: R2Bucket, key: string): Promise<Uint8Array | undefined> {
  const obj = await bucket.get(key);
  return obj ? new Uint8Array(await obj.arrayBuffer()) : undefined;
}

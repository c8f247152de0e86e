import { sniffImage } from "../lib/image-sniff";

export const inputKey = (jobId: string): string => `inputs/${jobId}/init`;
/** A `workflow` job's input image n (its name stays in the job: client strings never make keys). */
export const inputImageKey = (jobId: string, index: number): string => `inputs/${jobId}/image_${index}`;
export const passThroughKey = (jobId: string): string => `inputs/${jobId}/pass-through.json`;
/** Where a job's outputs go unless its dialect chose a place (SD-on-EKS's location). */
export const defaultOutputPrefix = (jobId: string): string => `outputs/${jobId}`;
export const outputKey = (prefix: string, index: number): string => `${prefix}/image_${index}.png`;
/** A dialect's manifest beside the outputs in R2 (SD-on-EKS's `.out`, when they are not in S3). */
export const manifestKey = (prefix: string): string => `${prefix}/result.out`;

/** The root of one tenant's outputs at places they chose; the tenant name encoded, one segment whatever it holds. */
const chosenRoot = (tenant: string): string => `tenants/${encodeURIComponent(tenant)}/`;

/**
 * Where a job's outputs go when its client chose their place (an SD-on-EKS location): under a root
 * of their own and the tenant's, so no client string reaches the core's keys (`inputs/`,
 * `outputs/`, `comfy/`, …) or another tenant's files, whatever location it names.
 */
export const chosenOutputPrefix = (tenant: string, location: string): string => `${chosenRoot(tenant)}${location}`;

/** The location a job's client chose (undefined for the default place); a job made before `tenants/` holds it bare. */
export function chosenLocation(tenant: string, jobId: string, outputPrefix: string): string | undefined {
  if (outputPrefix === defaultOutputPrefix(jobId)) return undefined;
  const root = chosenRoot(tenant);
  return outputPrefix.startsWith(root) ? outputPrefix.slice(root.length) : outputPrefix;
}

/**
 * Where an adapter puts each image of a backend's answer as soon as it is decoded, so no answer is
 * ever held whole: `index` is the image's place in the backend's list.
 */
export interface ImageStore {
  /** `nodeId`: the ComfyUI node that saved the image, kept with it. */
  put(index: number, chunks: Uint8Array[], length: number, nodeId?: string): Promise<StoredImage>;
}

export interface StoredImage {
  key: string;
  content_type: string;
  width: number;
  height: number;
  /** The ComfyUI node that saved it (a `workflow` job's outputs). */
  node_id?: string;
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

/** Images up to this are put as one buffer; larger ones stream in, so they are never copied whole. */
const STREAM_PUT_MIN = 1024 * 1024;
const SNIFF_BYTES = 64 * 1024;

/** An image that arrives in chunks (decoded from a backend's base64), put without joining them. */
export async function putImageChunks(bucket: R2Bucket, key: string, chunks: Uint8Array[], length: number): Promise<StoredImage> {
  const sniffed = sniffImage(joined(chunks, Math.min(length, SNIFF_BYTES)));
  const content_type = sniffed?.contentType ?? "application/octet-stream";
  const httpMetadata = { contentType: content_type };
  if (length < STREAM_PUT_MIN) await bucket.put(key, joined(chunks, length), { httpMetadata });
  else {
    const { readable, writable } = new FixedLengthStream(length);
    const writer = writable.getWriter();
    const write = async () => {
      for (const chunk of chunks) await writer.write(chunk);
      await writer.close();
    };
    await Promise.all([bucket.put(key, readable, { httpMetadata }), write()]);
  }
  return { key, content_type, width: sniffed?.width ?? 0, height: sniffed?.height ?? 0 };
}

/** The first `length` bytes of the chunks as one array. */
function joined(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1 && chunks[0]?.byteLength === length) return chunks[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    if (at >= length) break;
    const part = chunk.subarray(0, length - at);
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/**
 * A job's outputs as an adapter stores them, at the image's place in the backend's answer; it
 * remembers what it put, so what the job does not keep (a grid, a failed answer's images) goes.
 */
export class OutputStore implements ImageStore {
  private readonly stored = new Set<string>();

  constructor(
    private readonly bucket: R2Bucket,
    private readonly prefix: string,
  ) {}

  async put(index: number, chunks: Uint8Array[], length: number, nodeId?: string): Promise<StoredImage> {
    const key = outputKey(this.prefix, index);
    this.stored.add(key);
    const image = await putImageChunks(this.bucket, key, chunks, length);
    return nodeId === undefined ? image : { ...image, node_id: nodeId };
  }

  async discardExcept(kept: StoredImage[]): Promise<void> {
    const keep = new Set(kept.map((k) => k.key));
    const drop = [...this.stored].filter((k) => !keep.has(k));
    if (drop.length) await this.bucket.delete(drop);
  }
}

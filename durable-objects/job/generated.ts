/**
 * A finished generation's images, kept while the job writes them on (SD-on-EKS's S3 bucket): until
 * the job ends, its attempt looks like a call in flight, and a restart in that window would find the
 * call lost, ask the backend (A1111: "completed"), and run the generation again. Kept here, the new
 * instance resumes the writes instead. Dropped when the job ends.
 */
import type { StoredImage } from "../../src/storage/images";

const key = (attempt: number): string => `generated_${attempt}`;

export const keepGenerated = (storage: DurableObjectStorage, attempt: number, images: StoredImage[]): void => storage.kv.put(key(attempt), images);

export const readGenerated = (storage: DurableObjectStorage, attempt: number): StoredImage[] | undefined => storage.kv.get<StoredImage[]>(key(attempt));

export const dropGenerated = (storage: DurableObjectStorage): void => {
  for (const [name] of storage.kv.list({ prefix: "generated_" })) storage.kv.delete(name);
};

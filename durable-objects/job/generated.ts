/**
 * A finished generation's images, kept while the job writes them on (SD-on-EKS's S3 bucket): until
 * the job ends, its attempt looks like a call in flight, and a restart in that window would find the
 * call lost, ask the backend (A1111: "completed"), and run the generation again. Kept here, the new
 * instance resumes the writes instead. Dropped when the job ends.
 */
import type { StoredImage } from "../../src/storage/images";

const key = (attempt: number): string => `generated_${attempt}`;

/** `slotReturned`: the backend's slot went back when it answered (a synchronous backend's 200): a resume must not take it again. */
export type Generated = { images: StoredImage[]; slotReturned: boolean };

export const keepGenerated = (storage: DurableObjectStorage, attempt: number, generated: Generated): void => storage.kv.put(key(attempt), generated);

export const readGenerated = (storage: DurableObjectStorage, attempt: number): Generated | undefined => storage.kv.get<Generated>(key(attempt));

export const dropGenerated = (storage: DurableObjectStorage): void => {
  for (const [name] of storage.kv.list({ prefix: "generated_" })) storage.kv.delete(name);
};

/**
 * Credentials a job hands its backend (Comfy.org's, for ComfyUI's API nodes), kept apart from the
 * job's input: never in its row, snapshot, events, webhooks or logs, read only to send the
 * attempt, and dropped when the job ends (as ComfyUI drops them before it stores its history).
 */
import type { BackendCredentials } from "../../src/jobs/spec";

const KEY = "backend_credentials";

export const keepCredentials = (storage: DurableObjectStorage, credentials: BackendCredentials | undefined): void => {
  if (credentials && Object.keys(credentials).length) storage.kv.put(KEY, credentials);
};

export const readCredentials = (storage: DurableObjectStorage): BackendCredentials | undefined => storage.kv.get<BackendCredentials>(KEY);

export const dropCredentials = (storage: DurableObjectStorage): void => void storage.kv.delete(KEY);

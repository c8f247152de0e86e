/**
 * Handing a prompt's images to ComfyUI (`POST /upload/image`, multipart) before the prompt names
 * them. Overwrite is on: the names are the attempt's own, so a second upload after a cut
 * connection replaces its own file, never another job's.
 */
import type { BackendConfig } from "../config";
import { comfyHeaders } from "./comfyui-api";
import { callBackend, parseJsonObject, statusFailure } from "./http";
import type { BackendFailure } from "./types";

const UPLOAD_TIMEOUT_MS = 60_000;

/** The name each image got on the server, by the name asked for; a failure when one did not go. */
export async function uploadImages(config: BackendConfig, uploads: { name: string; bytes: Uint8Array }[], signal: AbortSignal): Promise<Map<string, string> | BackendFailure> {
  const names = new Map<string, string>();
  for (const upload of uploads) {
    const form = new FormData();
    form.append("image", new Blob([upload.bytes]), upload.name);
    form.append("overwrite", "true");
    form.append("type", "input");
    const res = await callBackend(`${config.url}/upload/image`, { method: "POST", headers: comfyHeaders(config), body: form }, UPLOAD_TIMEOUT_MS, signal);
    if (!res.ok) return res.outcome.kind === "failed" ? res.outcome.failure : { code: "backend_unavailable", message: "an image upload was cut", retryable: true };
    if (res.status !== 200) {
      const refused = statusFailure(res.status, res.body);
      // An upload refused is the backend's trouble (a proxy's size limit, a full disk): another may take it.
      return { ...(refused.kind === "failed" ? refused.failure : { code: "backend_failed", message: "an image upload failed" }), retryable: true };
    }
    const answer = parseJsonObject(res.body);
    const name = typeof answer?.name === "string" ? answer.name : upload.name;
    const subfolder = typeof answer?.subfolder === "string" && answer.subfolder ? `${answer.subfolder}/` : "";
    names.set(upload.name, subfolder + name);
  }
  return names;
}

/** A tenant's prompts: its ComfyUI object (prompt ids, queue numbers, sockets), the jobs behind them, and their uploaded inputs. */
import { rpc } from "../../contracts/rpc";
import type { PromptTrackerRpc } from "../../contracts/prompts";
import type { Env } from "../../env";
import { invalid } from "../../errors";
import type { JobSnapshot } from "../../jobs/results";
import type { Workflow } from "../../jobs/spec";
import { LOADERS } from "../../jobs/workflow-inputs";
import { MAX_WORKFLOW_IMAGES } from "../../schemas/job";
import { snapshotFor } from "../../jobs/tenant-job";
import { checkName, checkSubfolder, inputPath, uploadKey } from "./files";
import { PROMPT_FIELD, PROMPT_ID, promptData } from "./translate";

/** What one prompt's uploaded files may come to together. */
const MAX_UPLOADED_BYTES = 48 * 1024 * 1024;

/** The tenant's object: its name is also each prompt job's `subscriber`. */
export const trackerName = (tenant: string): string => `comfyui:${tenant}`;
export const tracker = (env: Env, tenant: string): PromptTrackerRpc => rpc<PromptTrackerRpc>(env.JOB_SUBSCRIBERS, trackerName(tenant));

/**
 * The tenant's prompt by the id ComfyUI clients know: a client-chosen UUID (looked up in the
 * tenant's object, which is only read) or the job's run id (checked before any object is named).
 */
export async function promptSnapshot(env: Env, tenant: string, promptId: string): Promise<JobSnapshot | undefined> {
  if (PROMPT_ID.test(promptId)) {
    const found = await tracker(env, tenant).lookup(promptId);
    return found ? snapshotFor(env, found.run_id, tenant) : undefined;
  }
  const snapshot = await snapshotFor(env, promptId, tenant);
  return snapshot?.input.dialect === "comfyui" && promptData(snapshot).prompt_id === promptId ? snapshot : undefined;
}

/**
 * The tenant's uploads its graph loads, as the job's named input images. A file in a subfolder (or
 * of another type) is handed over under one plain name, and the graph is given that name; a name
 * the tenant never uploaded is left as it is (the backend may have such a file of its own).
 */
export async function uploadedInputs(
  env: Env,
  tenant: string,
  graph: Record<string, unknown>,
): Promise<{ graph: Record<string, unknown>; images: { name: string; image: Uint8Array }[]; renamed: Record<string, string> }> {
  const images = new Map<string, Uint8Array>();
  const renamed: Record<string, string> = {};
  let held = 0;
  const out: Record<string, unknown> = { ...graph };
  for (const [id, node] of Object.entries(graph as Workflow)) {
    const value = node && typeof node === "object" && LOADERS.has(node.class_type) && node.inputs && typeof node.inputs === "object" ? node.inputs.image : undefined;
    if (typeof value !== "string") continue;
    const field = `${PROMPT_FIELD}.${id}.inputs.image`;
    const path = inputPath(value);
    const key = uploadKey(tenant, path.type, checkSubfolder(path.subfolder, field), checkName(path.name, field));
    const plain = path.subfolder === "" && path.type === "input";
    const name = plain ? path.name : [path.type, ...path.subfolder.split("/").filter(Boolean), path.name].join("_");
    if (name.length > 128) throw invalid(field, "the file's subfolder and name are too long together");
    if (!images.has(name)) {
      const obj = await env.IMAGES.get(key);
      if (!obj) continue;
      // Counted before a byte is read: the files are held together, in an isolate of 128 MB.
      held += obj.size;
      if (images.size >= MAX_WORKFLOW_IMAGES || held > MAX_UPLOADED_BYTES) {
        await obj.body.cancel();
        throw invalid(field, `a prompt may load at most ${MAX_WORKFLOW_IMAGES} uploaded files, ${MAX_UPLOADED_BYTES / 1024 / 1024} MiB in all`);
      }
      images.set(name, new Uint8Array(await obj.arrayBuffer()));
    }
    if (!plain) {
      out[id] = { ...node, inputs: { ...node.inputs, image: name } };
      renamed[id] = value;
    }
  }
  return { graph: out, images: [...images].map(([name, image]) => ({ name, image })), renamed };
}

/**
 * runpod-workers/worker-comfyui's handler (handler.py) behind the simulator's RunPod endpoint: an
 * input `{workflow, images?: [{name, image}]}` runs on the worker's own ComfyUI (its own disk, so
 * jobs never see each other's files) and answers 5.x `{images: [{filename, type, data}]}`, or the
 * 4.x `{status: "success", message}` form. An endpoint id ending in `-s3` answers `s3_url` items
 * (served by the simulator), one containing `-v4` the 4.x form.
 */
import { randomUUID } from "node:crypto";
import { ComfyFiles } from "./comfyui-files";
import { execute } from "./comfyui-execute";
import { CHECKPOINTS, UPSCALE_MODELS } from "./comfyui-nodes";
import { validatePrompt } from "./comfyui-validate";
import type { SimState } from "./state";

/** What the handler returns: RunPod turns an `error` into a FAILED job, anything else into its output. */
export type HandlerResult = { error: string; details?: string[] } | Record<string, unknown>;

/** Images handed out as `s3_url`, kept at most (the oldest go first). */
const MAX_S3 = 500;
const s3 = new Map<string, Buffer>();

/** `GET /_sim/s3/{job}/{file}`: an object a `-s3` endpoint uploaded. */
export const s3Object = (path: string): Buffer | undefined => s3.get(path);

/** Whether a RunPod job goes to worker-comfyui: its endpoint is a comfy one or its input carries a workflow. */
export const isComfyJob = (endpoint: string, input: Record<string, unknown>) => endpoint.includes("comfy") || "workflow" in input;

/** handler.py's message for a ComfyUI 400: the error's message and each node error, one `•` line per field. */
function validationMessage(error: { type: string; message: string }, nodeErrors: Record<string, object>, raw: string): string {
  const message = error.type === "prompt_outputs_failed_validation" ? "Workflow validation failed" : error.message;
  const details = Object.entries(nodeErrors).flatMap(([id, e]) => Object.entries(e).map(([field, v]) => `Node ${id} (${field}): ${typeof v === "string" ? v : JSON.stringify(v)}`));
  if (details.length === 0) return `${message}. Raw response: ${raw}`;
  let text = `${message}:\n${details.map((d) => `• ${d}`).join("\n")}`;
  if (details.some((d) => d.includes("not in list") && d.includes("ckpt_name"))) text += `\n\nAvailable checkpoint models: ${CHECKPOINTS.join(", ")}`;
  return text;
}

export async function runWorkflow(state: SimState, opts: { endpoint: string; jobId: string; baseUrl: string; input: Record<string, unknown>; interrupted: () => boolean }): Promise<HandlerResult> {
  const { input } = opts;
  const workflow = input.workflow;
  if (workflow === undefined || workflow === null) return { error: "Missing 'workflow' parameter" };
  const images = input.images;
  if (images !== undefined && images !== null && (!Array.isArray(images) || !images.every((i) => i && typeof i === "object" && "name" in i && "image" in i))) {
    return { error: "'images' must be a list of objects with 'name' and 'image' keys" };
  }
  const files = new ComfyFiles();
  const uploadErrors: string[] = [];
  for (const img of (images ?? []) as { name: unknown; image: unknown }[]) {
    const data = String(img.image).replace(/^data:[^,]*,/, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data.replace(/\s/g, ""))) {
      uploadErrors.push(`Error decoding base64 for ${String(img.name)}: Incorrect padding`);
      continue;
    }
    files.upload("input", "", String(img.name), Buffer.from(data, "base64"), true);
  }
  if (uploadErrors.length) return { error: "Failed to upload one or more input images", details: uploadErrors };

  const lists = { checkpoints: CHECKPOINTS, upscaleModels: Object.keys(UPSCALE_MODELS), inputFiles: files.inputFiles() };
  // The handler posts the workflow to its ComfyUI as JSON: a copy, as the graph crosses the wire.
  const v = validatePrompt(structuredClone(workflow), lists, (name) => files.resolve(name) !== undefined);
  if (!v.ok) return { error: validationMessage(v.error, v.nodeErrors, JSON.stringify({ error: v.error, node_errors: v.nodeErrors })) };
  const promptId = randomUUID();
  state.stats.byPrompt[promptId] = (state.stats.byPrompt[promptId] ?? 0) + 1;
  const result = await execute({ state, kind: "runpod", files, promptId, graph: v.graph, outputs: v.outputs, extraData: {}, emit: () => undefined, emitImage: () => undefined, interrupted: opts.interrupted });
  const errors: string[] = [];
  const failed = result.messages.find(([event]) => event === "execution_error")?.[1];
  if (failed) errors.push(`Workflow execution error: Node Type: ${String(failed.node_type)}, Node ID: ${String(failed.node_id)}, Message: ${String(failed.exception_message)}`);
  // An interrupted prompt ends without `executing: null` for its prompt: the handler's wait loop never confirms it.
  if (!result.success && !failed) return { error: "Workflow monitoring loop exited without confirmation of completion or error." };

  const form = opts.endpoint.includes("-v4") ? "v4" : opts.endpoint.endsWith("-s3") ? "s3" : "base64";
  const out: { filename: string; type: "base64" | "s3_url"; data: string }[] = [];
  for (const id of Object.keys(result.outputs).sort((a, b) => Number(a) - Number(b) || a.localeCompare(b))) {
    for (const ref of result.outputs[id]?.images ?? []) {
      if (ref.type === "temp") continue;
      const bytes = files.get(ref.type, ref.subfolder, ref.filename);
      if (!bytes) continue;
      if (form === "s3") {
        const path = `${opts.jobId}/${ref.filename}`;
        s3.set(path, bytes);
        for (const k of s3.keys()) if (s3.size > MAX_S3) s3.delete(k);
        out.push({ filename: ref.filename, type: "s3_url", data: `${opts.baseUrl}/_sim/s3/${path}` });
      } else out.push({ filename: ref.filename, type: "base64", data: bytes.toString("base64") });
    }
  }
  if (out.length === 0 && errors.length) return { error: "Job processing failed", details: errors };
  if (form === "v4") {
    // 4.x answered with the last image only.
    const last = out[out.length - 1];
    return last ? { status: "success", message: last.data, refresh_worker: false } : { status: "error", message: "the image does not exist in the specified output folder: /comfyui/output/" };
  }
  if (out.length === 0) return { status: "success_no_images", images: [] };
  return errors.length ? { images: out, errors } : { images: out };
}

/**
 * A worker-comfyui job's status read as an outcome. 5.x outputs `{images: [{filename, type:
 * "base64"|"s3_url", data}]}`; before 5.0 `{status: "success", message: <base64 or URL>}` (the last
 * image only). Its failures come as text: a graph ComfyUI refused, or a node that raised.
 */
import { base64ToBytes } from "../lib/base64";
import { nodeFailure } from "./comfyui-history";
import { failed } from "./http";
import { runpodOutcome } from "./runpod";
import type { ImageStore, Outcome, WorkflowOutputs } from "./types";
import { withDeadline } from "../lib/deadline";

const FETCH_TIMEOUT_MS = 60_000;

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const str = (v: unknown): string => (typeof v === "string" ? v : v === undefined || v === null ? "" : JSON.stringify(v));

/** One output image's bytes: base64 (or a data URI) as given, a URL fetched. */
async function imageBytes(type: string, data: string, signal: AbortSignal): Promise<Uint8Array | undefined> {
  if (type === "s3_url" || /^https?:\/\//.test(data)) {
    return withDeadline(
      FETCH_TIMEOUT_MS,
      async (bounded) => {
        const res = await fetch(data, { redirect: "follow", signal: bounded });
        if (res.status !== 200) {
          await res.body?.cancel();
          return undefined;
        }
        return new Uint8Array(await res.arrayBuffer());
      },
      signal,
    );
  }
  return base64ToBytes(data.replace(/^data:[^,]*,/, "")) ?? undefined;
}

/** The images of a COMPLETED output, in the worker's order (it lists them in node order). */
function outputImages(output: Record<string, unknown>): { filename: string; type: string; data: string }[] {
  if (Array.isArray(output.images)) return output.images.map((i) => ({ filename: str(obj(i).filename), type: str(obj(i).type), data: str(obj(i).data) })).filter((i) => i.data);
  return output.status === "success" && typeof output.message === "string" ? [{ filename: "", type: "", data: output.message }] : [];
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The node that saved a file, told by its name: ComfyUI names a saved file
 * `<last segment of filename_prefix>_<counter>_.<ext>`. Undefined when no saving node, or more
 * than one, could have named it (two nodes with one prefix).
 */
export function nodeOfFile(filename: string, saveNodes: { node: string; prefix: string }[]): string | undefined {
  const found = saveNodes.filter(({ prefix }) => new RegExp(`^${escapeRegExp(prefix.split("/").pop() ?? prefix)}_\\d+_?\\.[A-Za-z0-9]+$`).test(filename));
  return found.length === 1 ? found[0]?.node : undefined;
}

/**
 * A FAILED job's text as the failure it is: the graph's fault or a node's exception fails the job;
 * anything else fails over. ComfyUI's 400 to `/prompt` reaches the worker's text as "Workflow
 * validation failed", or as its message ("Cannot execute because node X does not exist.", "Prompt
 * has no outputs") followed by "Raw response: {...}" (handler.py `queue_workflow`).
 */
function failure(text: string, canonical: boolean): Outcome {
  if (/validation failed|Error queuing workflow|Raw response: \{/i.test(text)) return failed("invalid_request", `ComfyUI refused the graph: ${text}`.slice(0, 1000), false);
  if (/Workflow execution error/i.test(text)) return nodeFailure(text, canonical);
  return failed("backend_failed", "the RunPod job failed", true, text);
}

/** `expected`: a canonical job's image count, in a graph Easel built; a workflow's has none. */
export async function comfyWorkerOutcome(status: Record<string, unknown> | undefined, ctx: { expected?: number; workflow?: WorkflowOutputs; images: ImageStore; signal: AbortSignal }): Promise<Outcome> {
  const canonical = ctx.expected !== undefined;
  if (status?.status === "FAILED") {
    const output = obj(status.output);
    const details = Array.isArray(output.details) ? output.details.map(str) : [];
    return failure([str(status.error), str(output.error), ...details].filter(Boolean).join(": "), canonical);
  }
  if (status?.status !== "COMPLETED") return runpodOutcome({ json: status, images: [] }, 1);
  const output = obj(status.output);
  if (typeof output.error === "string") return failure([output.error, ...(Array.isArray(output.details) ? output.details.map(str) : [])].join(": "), canonical);
  // A node that raised after another had saved: the worker answers the saved images with the error
  // beside them in `errors`, and RunPod calls that COMPLETED. Beside images, its every other entry
  // is an image it lost (not fetched from /view, not uploaded, not encoded, no filename): the
  // answer lacks what the graph saved.
  const errors = Array.isArray(output.errors) ? output.errors.map(str) : [];
  const raised = errors.find((e) => /Workflow execution error/i.test(e));
  if (raised) return failure(raised, canonical);
  if (errors.length) return failed("backend_failed", "the worker lost an image the graph saved", true, errors.join(" | ").slice(0, 1000));
  const list = outputImages(output);
  const wanted = ctx.expected === undefined ? list : list.slice(0, ctx.expected);
  if (!wanted.length) return failed("backend_failed", "the worker answered without images", ctx.expected !== undefined);
  if (ctx.expected !== undefined && wanted.length < ctx.expected) return failed("backend_failed", `the worker returned ${wanted.length} of ${ctx.expected} images`, true);
  const nodes = await ctx.workflow?.saveNodes();
  const images = [];
  for (const [index, image] of wanted.entries()) {
    const bytes = await imageBytes(image.type, image.data, ctx.signal).catch(() => undefined);
    if (!bytes?.byteLength) return failed("backend_failed", "an image of the worker's answer could not be read", true);
    images.push(await ctx.images.put(index, [bytes], bytes.byteLength, nodes && nodeOfFile(image.filename, nodes)));
  }
  return { kind: "done", images };
}

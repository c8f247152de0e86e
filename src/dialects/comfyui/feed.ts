/**
 * A prompt's job events as the messages ComfyUI sends on `/ws` (`{type, data}`), for the
 * tenant's object that holds the sockets (durable-objects/comfy-socket.ts), and the history entry
 * as the `extra_data.webhook` body.
 */
import { registerFeedRenderer, type FeedMessage, type FeedRenderer, type FollowedJob, type JobNotice, type JobPreview, type RenderedNotice } from "../../contracts/job-feed";
import { beforeEnd, registerWebhookRenderer } from "../../contracts/renderers";
import type { Workflow } from "../../jobs/spec";
import { STREAMED_SAVE } from "../../jobs/workflow-graph";
import { executionError, historyOutputs, historyWebhook } from "./translate";

/** The first node with no links among its inputs: one ComfyUI can run before any other. */
const firstNode = (graph: Workflow): string | undefined => Object.keys(graph).find((id) => !Object.values(graph[id]?.inputs ?? {}).some(Array.isArray));

const message = (type: string, data: Record<string, unknown>): string => JSON.stringify({ type, data });

/** server.py's binary preview header: event 1 (PREVIEW_IMAGE), then the format (1 JPEG, 2 PNG). */
const FRAME_FORMATS: Record<string, number> = { "image/jpeg": 1, "image/png": 2 };
const frameHeader = (format: number): Uint8Array => new Uint8Array([0, 0, 0, 1, 0, 0, 0, format]);

/**
 * A SaveImageWebsocket's images as ComfyUI sends them to the prompt's client: a `progress` (its
 * step from 0) and a binary frame per image, while the node is the one executing. The backend ran
 * it as a SaveImage (see the ComfyUI plan), so the images are the job's stored outputs.
 */
function streamed(notice: JobNotice, node: string, prompt_id: string, alone: boolean): FeedMessage[] {
  const outputs = notice.snapshot.job.output.flatMap((o, index) => {
    const format = FRAME_FORMATS[o.content_type];
    return o.node_id === node && format ? [{ index, format }] : [];
  });
  return outputs.map(({ index, format }, n) => ({ ...(alone ? { lead: message("progress", { value: n, max: outputs.length, prompt_id, node }) } : {}), prefix: frameHeader(format), output: index }));
}

function noticeMessages(notice: JobNotice, followed: FollowedJob): RenderedNotice {
  const prompt_id = followed.id;
  const messages: FeedMessage[] = [];
  const closing: string[] = [];
  const after: string[] = [];
  let node = followed.node;
  let heard = followed.heard;
  const ended = () => messages.push(message("executing", { node: null, prompt_id }));
  for (const event of notice.events) {
    const timestamp = Date.parse(event.at);
    if (event.type === "job.started") {
      messages.push(message("execution_start", { prompt_id, timestamp }));
      messages.push(message("execution_cached", { nodes: [], prompt_id, timestamp }));
      // ComfyUI says at once which node it runs (a loader first); clients such as the SDK's
      // CallWrapper take that as "the prompt is running" and only then listen for its end.
      const first = firstNode(notice.snapshot.input.spec.workflow ?? {});
      if (first !== undefined) {
        messages.push(message("executing", { node: first, display_node: first, prompt_id }));
        node = first;
      }
    } else if (event.type === "job.progress") {
      const running = typeof event.data.node === "string" ? event.data.node : (notice.progress?.node ?? node);
      if (running && running !== node) messages.push(message("executing", { node: running, display_node: running, prompt_id }));
      node = running;
      // ComfyUI runs one prompt at a time, and the SDK's CallWrapper takes any progress for its own;
      // but its onStart waits for its prompt's first progress, which therefore always goes, in a
      // later notice than the prompt's first `executing` (the SDK listens for progress only after
      // that one and a read of the history).
      const listening = followed.node !== null;
      if (followed.alone || (!heard && listening)) messages.push(message("progress", { value: Number(event.data.step ?? 0), max: Number(event.data.steps ?? 0), prompt_id, node: running }));
      heard ||= listening;
    } else if (event.type === "job.succeeded") {
      const graph = notice.snapshot.input.spec.workflow ?? {};
      for (const [id, output] of Object.entries(historyOutputs(notice.snapshot))) {
        messages.push(message("executing", { node: id, display_node: id, prompt_id }));
        // The node returns no UI, so ComfyUI sends no `executed` for it (the history lists its images here).
        if (graph[id]?.class_type === STREAMED_SAVE) messages.push(...streamed(notice, id, prompt_id, followed.alone));
        else messages.push(message("executed", { node: id, display_node: id, output, prompt_id }));
      }
      // ComfyUI ends a prompt with these two, and runs the next only after: the SDK's CallWrapper
      // takes any execution_success as the end of its own prompt, whatever its prompt_id (so it
      // may be held), while `executing` null is matched by prompt id (websockets_api_example waits
      // for it), so it never waits.
      closing.push(message("execution_success", { prompt_id, timestamp }));
      after.push(message("executing", { node: null, prompt_id }));
    } else if (event.type === "job.failed") {
      messages.push(message("execution_error", { ...executionError(notice.snapshot, timestamp, node), prompt_id }));
      ended();
    } else if (event.type === "job.canceled") {
      messages.push(message("execution_interrupted", { prompt_id, node_id: node, node_type: null, executed: [], timestamp }));
      ended();
    }
  }
  return { messages, closing, after, node, heard };
}

/** A sampling preview as ComfyUI sends it to a client that did not ask for metadata. */
function previewFrame(p: JobPreview): Uint8Array | undefined {
  const format = FRAME_FORMATS[p.content_type];
  if (!format) return undefined;
  const frame = new Uint8Array(8 + p.image.length);
  frame.set(frameHeader(format));
  frame.set(p.image, 8);
  return frame;
}

export const statusMessage = (queueRemaining: number, sid?: string): string =>
  message("status", { status: { exec_info: { queue_remaining: queueRemaining } }, ...(sid ? { sid } : {}) });

export function registerComfyRenderers(): void {
  registerFeedRenderer("comfyui", { notice: noticeMessages, status: statusMessage, preview: previewFrame } satisfies FeedRenderer);
  // Only the end is news to a ComfyUI client: the history entry, as `GET /history/{id}` shows it.
  registerWebhookRenderer("comfyui", (_env, snapshot, type) => (beforeEnd(type) ? null : historyWebhook(snapshot)));
}

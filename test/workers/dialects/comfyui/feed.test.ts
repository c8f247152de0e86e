import { describe, expect, it } from "vitest";
import { feedRenderer, type FeedMessage } from "../../../../src/contracts/job-feed";
import { registerComfyRenderers } from "../../../../src/dialects/comfyui/feed";
import { snapshot } from "../support";

registerComfyRenderers();
const render = feedRenderer("comfyui");
const event = (type: string, data: Record<string, unknown> = {}) => ({ seq: 1, type, at: "2026-05-04T10:20:33.500Z", data });
type Parsed = { type: string; data: Record<string, unknown> };
/** Text messages parsed; a binary frame as the message before it, its header's bytes and the stored output it carries. */
const parsed = (messages: FeedMessage[]) =>
  messages.flatMap((m) => (typeof m === "string" ? [JSON.parse(m) as Parsed] : [...(m.lead ? [JSON.parse(m.lead) as Parsed] : []), { frame: [...m.prefix], output: m.output }]));

describe("ComfyUI socket messages", () => {
  it("reports a failed prompt as execution_error with the failure's message and code, then executing null", () => {
    const failed = snapshot({ status: "failed", dialect: "comfyui", error: { code: "backend_error", message: "KSampler: CUDA out of memory" } });
    const { messages } = render?.notice({ events: [event("job.failed")], snapshot: failed, progress: null }, { id: "p", node: "3", alone: true, heard: true }) ?? { messages: [] };
    expect(parsed(messages)).toEqual([
      { type: "execution_error", data: expect.objectContaining({ prompt_id: "p", node_id: "3", exception_message: "KSampler: CUDA out of memory", exception_type: "backend_error", traceback: [] }) },
      { type: "executing", data: { node: null, prompt_id: "p" } },
    ]);
  });

  it("names in execution_error the node the backend said failed, with its class_type, not the node last reported running", () => {
    const failed = snapshot({ status: "failed", dialect: "comfyui", error: { code: "backend_error", message: "node 8 (VAEDecode): boom", node: { id: "8", type: "VAEDecode" } } });
    const { messages } = render?.notice({ events: [event("job.failed")], snapshot: failed, progress: null }, { id: "p", node: "3", alone: true, heard: true }) ?? { messages: [] };
    expect(parsed(messages)[0]).toMatchObject({ data: { node_id: "8", node_type: "VAEDecode" } });
  });

  it("names each progress message's node from its own event, and says executing when the node changes", () => {
    const running = snapshot({ status: "running", dialect: "comfyui" });
    const out = render?.notice({ events: [event("job.progress", { step: 1, steps: 8, node: "3" }), event("job.progress", { step: 1, steps: 2, node: "11" })], snapshot: running, progress: null }, { id: "p", node: "3", alone: true, heard: true });
    expect(parsed(out?.messages ?? [])).toEqual([
      { type: "progress", data: { value: 1, max: 8, prompt_id: "p", node: "3" } },
      { type: "executing", data: { node: "11", display_node: "11", prompt_id: "p" } },
      { type: "progress", data: { value: 1, max: 2, prompt_id: "p", node: "11" } },
    ]);
    expect(out?.node).toBe("11");
  });

  it("sends a SaveImageWebsocket's images as ComfyUI does, a progress and a PNG frame each while it is the node executing, and no executed; a SaveImage's only as executed", () => {
    const workflow = {
      "8": { class_type: "VAEDecode", inputs: {} },
      "9": { class_type: "SaveImage", inputs: { images: ["8", 0], filename_prefix: "disk" } },
      save_image_websocket_node: { class_type: "SaveImageWebsocket", inputs: { images: ["8", 0] } },
    };
    const done = snapshot({ dialect: "comfyui", spec: { type: "workflow", workflow, samples: 3 } });
    done.job.output = done.job.output.map((o, i) => ({ ...o, node_id: i === 0 ? "9" : "save_image_websocket_node" }));
    const out = render?.notice({ events: [event("job.succeeded")], snapshot: done, progress: null }, { id: "p", node: "8", alone: true, heard: true });
    const messages = parsed(out?.messages ?? []);
    const ws = messages.findIndex((m) => "type" in m && m.type === "executing" && m.data.node === "save_image_websocket_node");
    expect(messages.slice(ws, ws + 5)).toEqual([
      { type: "executing", data: { node: "save_image_websocket_node", display_node: "save_image_websocket_node", prompt_id: "p" } },
      { type: "progress", data: { value: 0, max: 2, prompt_id: "p", node: "save_image_websocket_node" } },
      { frame: [0, 0, 0, 1, 0, 0, 0, 2], output: 1 },
      { type: "progress", data: { value: 1, max: 2, prompt_id: "p", node: "save_image_websocket_node" } },
      { frame: [0, 0, 0, 1, 0, 0, 0, 2], output: 2 },
    ]);
    // The image SaveImage wrote is a file the client reads: no frame.
    expect(messages.filter((m) => "frame" in m).map((m) => ("frame" in m ? m.output : -1))).toEqual([1, 2]);
    expect(messages.filter((m) => "type" in m && m.type === "executed").map((m) => ("data" in m ? m.data.node : ""))).toEqual(["9"]);
  });

  it("sends no progress but the first while another prompt of the client runs (the SDK takes any progress for its prompt's), but says which node runs; its images still come as frames", () => {
    const running = snapshot({ status: "running", dialect: "comfyui" });
    const events = [event("job.progress", { step: 1, steps: 8, node: "3" }), event("job.progress", { step: 1, steps: 2, node: "11" })];
    const side = render?.notice({ events, snapshot: running, progress: null }, { id: "p", node: "3", alone: false, heard: true });
    expect(parsed(side?.messages ?? [])).toEqual([{ type: "executing", data: { node: "11", display_node: "11", prompt_id: "p" } }]);
    // Its first progress goes all the same: the SDK's onStart waits for it.
    const first = render?.notice({ events, snapshot: running, progress: null }, { id: "p", node: "3", alone: false, heard: false });
    expect(parsed(first?.messages ?? []).map((m) => ("type" in m ? m.type : "frame"))).toEqual(["progress", "executing"]);
    expect(first?.heard).toBe(true);
    // A prompt whose start was not told (its notice lost): its first executing goes now, its first
    // progress with the next notice, once the SDK listens.
    const unstarted = render?.notice({ events: events.slice(0, 1), snapshot: running, progress: null }, { id: "p", node: null, alone: false, heard: false });
    expect(parsed(unstarted?.messages ?? []).map((m) => ("type" in m ? m.type : "frame"))).toEqual(["executing"]);
    expect(unstarted?.heard).toBe(false);
    const workflow = { "8": { class_type: "VAEDecode", inputs: {} }, ws: { class_type: "SaveImageWebsocket", inputs: { images: ["8", 0] } } };
    const done = snapshot({ dialect: "comfyui", spec: { type: "workflow", workflow, samples: 1 } });
    done.job.output = done.job.output.map((o) => ({ ...o, node_id: "ws" }));
    const end = parsed(render?.notice({ events: [event("job.succeeded")], snapshot: done, progress: null }, { id: "p", node: "8", alone: false, heard: true }).messages ?? []);
    expect(end.filter((m) => "frame" in m || ("type" in m && m.type === "progress"))).toEqual([{ frame: [0, 0, 0, 1, 0, 0, 0, 2], output: 0 }]);
  });

  it("says the queue's length, with the client's id on connect", () => {
    expect(JSON.parse(render?.status(2, "c1") ?? "")).toEqual({ type: "status", data: { status: { exec_info: { queue_remaining: 2 } }, sid: "c1" } });
    expect(JSON.parse(render?.status(0) ?? "")).toEqual({ type: "status", data: { status: { exec_info: { queue_remaining: 0 } } } });
  });
});

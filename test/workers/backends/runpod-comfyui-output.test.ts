import { describe, expect, it } from "vitest";
import { comfyWorkerOutcome, nodeOfFile } from "../../../src/backends/runpod-comfyui-output";
import { memoryStore } from "./support";

const ctx = (expected?: number) => ({ expected, images: memoryStore(), signal: AbortSignal.timeout(1000) });

describe("worker-comfyui outputs", () => {
  it("stores 5.x base64 images in order, and the 4.x single message", async () => {
    const store = memoryStore();
    const done = await comfyWorkerOutcome({ id: "j", status: "COMPLETED", output: { images: [{ filename: "a.png", type: "base64", data: btoa("one") }, { filename: "b.png", type: "base64", data: `data:image/png;base64,${btoa("two")}` }] } }, { expected: 2, images: store, signal: AbortSignal.timeout(1000) });
    expect(done.kind).toBe("done");
    if (done.kind === "done") expect(done.images.map((i) => store.text(i))).toEqual(["one", "two"]);
    expect(await comfyWorkerOutcome({ id: "j", status: "COMPLETED", output: { status: "success", message: btoa("old") } }, ctx(1))).toMatchObject({ kind: "done" });
  });

  it("tells which node saved each file by ComfyUI's file names, and none when two nodes share a prefix", async () => {
    const saveNodes = [
      { node: "9", prefix: "portraits/face" },
      { node: "12", prefix: "face_detail" },
      { node: "20", prefix: "twin" },
      { node: "21", prefix: "twin" },
    ];
    expect(nodeOfFile("face_00001_.png", saveNodes)).toBe("9");
    expect(nodeOfFile("face_detail_00003_.png", saveNodes)).toBe("12");
    expect(nodeOfFile("twin_00001_.png", saveNodes)).toBeUndefined();
    expect(nodeOfFile("other_00001_.png", saveNodes)).toBeUndefined();
    const done = await comfyWorkerOutcome(
      { id: "j", status: "COMPLETED", output: { images: [{ filename: "face_detail_00001_.png", type: "base64", data: btoa("detail") }, { filename: "face_00002_.png", type: "base64", data: btoa("face") }] } },
      { workflow: { saveNodes: async () => saveNodes }, images: memoryStore(), signal: AbortSignal.timeout(1000) },
    );
    expect(done.kind === "done" && done.images.map((i) => i.node_id)).toEqual(["12", "9"]);
  });

  it("reads a graph ComfyUI refused and a workflow node's exception as the job's failure, anything else as the worker's", async () => {
    expect(await comfyWorkerOutcome({ id: "j", status: "FAILED", error: "Error queuing workflow: Workflow validation failed:\n• Node 4 (errors): ..." }, ctx(1))).toMatchObject({ kind: "failed", failure: { code: "invalid_request", retryable: false } });
    const raised = { id: "j", status: "FAILED", error: "Job processing failed", output: { details: ["Workflow execution error: Node Type: KSampler, Node ID: 3, Message: boom"] } };
    expect(await comfyWorkerOutcome(raised, ctx())).toMatchObject({ kind: "failed", failure: { code: "backend_error", retryable: false } });
    // In a canonical job's graph, Easel's own, the node's exception is the worker's fault: it fails over.
    expect(await comfyWorkerOutcome(raised, ctx(1))).toMatchObject({ kind: "failed", failure: { code: "backend_failed", retryable: true } });
    expect(await comfyWorkerOutcome({ id: "j", status: "FAILED", error: "ComfyUI server (127.0.0.1:8188) not reachable after multiple retries." }, ctx(1))).toMatchObject({ kind: "failed", failure: { code: "backend_failed", retryable: true } });
  });

  it("fails at once, never over, a graph with a node class ComfyUI lacks: its message and raw 400 in the worker's error", async () => {
    const raw = JSON.stringify({ error: { type: "invalid_prompt", message: "Cannot execute because node FooSampler does not exist.", details: "Node ID '#3'", extra_info: {} }, node_errors: {} });
    const outcome = await comfyWorkerOutcome({ id: "j", status: "FAILED", error: `Cannot execute because node FooSampler does not exist.. Raw response: ${raw}` }, ctx(1));
    expect(outcome).toMatchObject({ kind: "failed", failure: { code: "invalid_request", retryable: false } });
    expect(outcome.kind === "failed" && outcome.failure.message).toContain("FooSampler does not exist");
  });

  it("fails a graph whose node raised after another had saved (COMPLETED with images and an execution error), or one of whose images the worker lost", async () => {
    const images = [{ filename: "ComfyUI_00001_.png", type: "base64", data: btoa("saved") }];
    const raised = await comfyWorkerOutcome({ id: "j", status: "COMPLETED", output: { images, errors: ["Workflow execution error: Node Type: SaveImage, Node ID: 10, Message: disk full"] } }, ctx());
    expect(raised).toMatchObject({ kind: "failed", failure: { code: "backend_error", retryable: false } });
    expect(raised.kind === "failed" && raised.failure.message).toContain("Node ID: 10");
    // handler.py answers the images it could return and lists the others in `errors`.
    for (const lost of ["Failed to fetch image data for up_00001_.png from /view endpoint.", "Error uploading up_00001_.png to S3: AccessDenied"]) {
      expect(await comfyWorkerOutcome({ id: "j", status: "COMPLETED", output: { images, errors: [lost] } }, ctx())).toMatchObject({ kind: "failed", failure: { code: "backend_failed", retryable: true } });
    }
    expect(await comfyWorkerOutcome({ id: "j", status: "COMPLETED", output: { images } }, ctx())).toMatchObject({ kind: "done" });
  });

  it("keeps a running job pending, and takes an answer without images for a failure in disguise", async () => {
    expect(await comfyWorkerOutcome({ id: "j", status: "IN_PROGRESS" }, ctx(1))).toMatchObject({ kind: "pending", externalId: "j" });
    expect(await comfyWorkerOutcome({ id: "j", status: "COMPLETED", output: { status: "success_no_images", images: [] } }, ctx(1))).toMatchObject({ kind: "failed", failure: { retryable: true } });
    expect(await comfyWorkerOutcome({ id: "j", status: "COMPLETED", output: { images: [{ type: "base64", data: btoa("x") }] } }, ctx(2))).toMatchObject({ kind: "failed", failure: { message: "the worker returned 1 of 2 images" } });
  });
});

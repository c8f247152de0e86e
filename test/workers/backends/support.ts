import { readImageAnswer, type ImageAnswer } from "../../../src/backends/http";
import type { ImageStore } from "../../../src/backends/types";
import type { StoredImage } from "../../../src/storage/images";
import { jsonBody, type StreamedBody } from "../../../src/lib/json-slots";
import { expect } from "vitest";

/** A request body as the backend receives it, parsed (a streamed one read whole, checked against the length it is sent with). */
export async function sent(value: unknown): Promise<unknown> {
  const body: string | StreamedBody = jsonBody(value);
  if (typeof body === "string") return JSON.parse(body);
  const bytes = new Uint8Array(await new Response(body.open()).arrayBuffer());
  expect(bytes.byteLength).toBe(body.length);
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** An image store in memory: what each key got, for the tests to read back. */
export function memoryStore(): ImageStore & { text(image: StoredImage): string } {
  const kept = new Map<string, Uint8Array>();
  return {
    async put(index, chunks, length, nodeId) {
      const bytes = new Uint8Array(length);
      let at = 0;
      for (const c of chunks) {
        bytes.set(c, at);
        at += c.byteLength;
      }
      kept.set(`mem/${index}`, bytes);
      return { key: `mem/${index}`, content_type: "application/octet-stream", width: 0, height: 0, ...(nodeId === undefined ? {} : { node_id: nodeId }) };
    },
    text: (image) => new TextDecoder().decode(kept.get(image.key)),
  };
}

/** `json` as a backend's answer arriving in small pieces, read the way adapters read it. */
export const answerOf = (json: unknown, imagesAt: readonly string[], store: ImageStore = memoryStore()): Promise<ImageAnswer> =>
  answerOfText(json === undefined ? "not json" : JSON.stringify(json), imagesAt, store);

/** The same for an answer's exact text, in pieces of `pieceBytes`. */
export async function answerOfText(text: string, imagesAt: readonly string[], store: ImageStore = memoryStore(), pieceBytes = 7): Promise<ImageAnswer> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + pieceBytes));
      at += pieceBytes;
    },
  });
  return readImageAnswer(body, imagesAt, store);
}

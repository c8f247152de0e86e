import { describe, expect, it } from "vitest";
import { readAtMost } from "../../../src/lib/streams";

const streamOfChunks = (sizes: number[]) => {
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const size = sizes[i++];
      if (size === undefined) return controller.close();
      controller.enqueue(new Uint8Array(size).fill(i));
    },
  });
  return { reader: stream.getReader() };
};

describe("readAtMost", () => {
  it("joins a body up to the limit, the limit itself included", async () => {
    const { reader } = streamOfChunks([3, 4, 3]);
    const bytes = await readAtMost(reader, 10);
    expect(bytes?.byteLength).toBe(10);
    expect([...(bytes ?? [])]).toEqual([1, 1, 1, 2, 2, 2, 2, 3, 3, 3]);
  });

  it("stops at the first chunk past the limit and leaves the rest unread", async () => {
    const { reader } = streamOfChunks([6, 6, 6, 6]);
    expect(await readAtMost(reader, 10)).toBeNull();
    // The reader is left where it stopped (after the second chunk): the third comes next.
    expect((await reader.read()).value?.[0]).toBe(3);
  });
});

import type { CallbackBody } from "../contracts/job";
import { EaselError } from "../errors";
import { concatBytes } from "../lib/streams";

/** R2 wants every part but the last of one size, at least 5 MiB. */
const PART_BYTES = 8 * 1024 * 1024;

/**
 * Reads a body whose length is not declared (chunked): up to `inlineMax` bytes it comes back as
 * text; past that it goes into R2 at `key` as a multipart upload, a part at a time, so at most about
 * two parts are ever held, never the whole body nor a second copy of it. Over `maxBytes` is a 413,
 * with the upload aborted.
 */
export async function stageChunkedBody(bucket: R2Bucket, key: string, body: ReadableStream<Uint8Array>, opts: { inlineMax: number; maxBytes: number }): Promise<CallbackBody> {
  const reader = body.getReader();
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  let total = 0;
  let upload: R2MultipartUpload | undefined;
  const parts: R2UploadedPart[] = [];
  const sendPart = async (bytes: Uint8Array) => {
    upload ??= await bucket.createMultipartUpload(key);
    parts.push(await upload.uploadPart(parts.length + 1, bytes));
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > opts.maxBytes) throw new EaselError(413, "payload_too_large", `the callback body is over ${opts.maxBytes / 1024 / 1024} MiB`);
      held.push(value);
      heldBytes += value.byteLength;
      // Inline bodies are kept whole; past the inline size, equal parts leave as soon as they fill.
      while ((upload || heldBytes > opts.inlineMax) && heldBytes >= PART_BYTES) {
        const all = concatBytes(held, heldBytes);
        await sendPart(all.subarray(0, PART_BYTES));
        const rest = all.subarray(PART_BYTES);
        held = rest.byteLength ? [rest] : [];
        heldBytes = rest.byteLength;
      }
    }
    if (!upload) return { text: new TextDecoder().decode(concatBytes(held, heldBytes)) };
    if (heldBytes > 0) await sendPart(concatBytes(held, heldBytes));
    await upload.complete(parts);
    return { staged: key };
  } catch (err) {
    await upload?.abort().catch(() => undefined);
    await reader.cancel().catch(() => undefined);
    throw err;
  }
}

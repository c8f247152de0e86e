import { base64EncodeStream, base64Length } from "../lib/base64";
import { serializeWithSlots, textPieces, type SlottedBody, type StreamedBody } from "../lib/json-slots";
import { chunksOf, streamOf } from "../lib/streams";

/**
 * Where one of the job's own output images goes in a webhook body, as base64. Images live in R2,
 * never in Durable Object storage, so the outbox keeps the body without them and the places they
 * go beside it (see lib/json-slots.ts).
 */
export class OutputImage {
  constructor(readonly index: number) {}
}

/** A base64 image as a renderer hands it over: the string itself, or its place in a webhook body. */
export type Base64Image = string | OutputImage;

/** A webhook body or dialect answer serialized with each `OutputImage` left out, its place recorded. */
export const withOutputSlots = (value: unknown): SlottedBody => serializeWithSlots(value, (v) => (v instanceof OutputImage ? v.index : undefined));

/**
 * The body as sent: the text as it is, each place the base64 of that output read from R2 chunk
 * by chunk as the body is read. Its length comes from the objects' sizes, so it can be sent with a
 * Content-Length; an output the job does not have is an empty string, never another object.
 */
export async function slottedStream(bucket: R2Bucket, body: SlottedBody, outputKeys: string[]): Promise<StreamedBody> {
  const wanted = [...new Set(body.slots.map((s) => s.output))];
  const sizes = new Map<number, number>();
  await Promise.all(
    wanted.map(async (i) => {
      const key = outputKeys[i];
      const head = key === undefined ? null : await bucket.head(key);
      sizes.set(i, head?.size ?? 0);
    }),
  );
  const pieces = textPieces(body);
  const length = pieces.reduce((n, p) => n + p.byteLength, 0) + body.slots.reduce((n, s) => n + base64Length(sizes.get(s.output) ?? 0), 0);
  const open = () =>
    streamOf(
      (async function* () {
        for (const [n, slot] of body.slots.entries()) {
          yield pieces[n] ?? new Uint8Array();
          const key = (sizes.get(slot.output) ?? 0) > 0 ? outputKeys[slot.output] : undefined;
          const obj = key === undefined ? null : await bucket.get(key);
          if (obj) yield* chunksOf(obj.body.pipeThrough(base64EncodeStream()));
        }
        yield pieces[body.slots.length] ?? new Uint8Array();
      })(),
    );
  return { length, open };
}

/** A webhook renderer's images: the job's outputs by position, filled in at delivery. */
export const outputPlaces = async (snapshot: { output_keys: string[] }): Promise<Base64Image[]> => snapshot.output_keys.map((_k, i) => new OutputImage(i));

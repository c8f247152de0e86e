import { base64EncodeStream, base64Length } from "../lib/base64";
import { chunksOf, streamOf } from "../lib/streams";

/**
 * Where one of the job's own output images goes in a webhook body, as base64. Images live in R2,
 * never in Durable Object storage, so the outbox keeps the body without them and the places they
 * go beside it. The places come from the structure being serialized, never from its text: no
 * string a client sent can name an image, however it is spelled.
 */
export class OutputImage {
  constructor(readonly index: number) {}
}

/** A base64 image as a renderer hands it over: the string itself, or its place in a webhook body. */
export type Base64Image = string | OutputImage;

/** A body's JSON text with every image left out (an empty string), and where each one goes. */
export interface SlottedBody {
  text: string;
  /** Offsets into `text`, ascending, each inside the quotes of an empty string. */
  slots: { at: number; output: number }[];
}

/** JSON.stringify's rules (undefined and functions skipped, toJSON honoured), recording image places. */
export function serializeWithSlots(value: unknown): SlottedBody {
  const parts: string[] = [];
  const slots: SlottedBody["slots"] = [];
  let length = 0;
  const emit = (s: string) => {
    parts.push(s);
    length += s.length;
  };
  const write = (v: unknown): void => {
    if (v instanceof OutputImage) {
      emit('"');
      slots.push({ at: length, output: v.index });
      emit('"');
      return;
    }
    if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") v = (v as { toJSON: () => unknown }).toJSON();
    if (v === null || typeof v !== "object") {
      emit(JSON.stringify(v) ?? "null");
      return;
    }
    if (Array.isArray(v)) {
      emit("[");
      v.forEach((item, i) => {
        if (i) emit(",");
        write(item === undefined || typeof item === "function" ? null : item);
      });
      emit("]");
      return;
    }
    emit("{");
    let first = true;
    for (const [k, item] of Object.entries(v)) {
      if (item === undefined || typeof item === "function") continue;
      emit(`${first ? "" : ","}${JSON.stringify(k)}:`);
      first = false;
      write(item);
    }
    emit("}");
  };
  write(value);
  return { text: parts.join(""), slots };
}

/** A body of a known size that can be read more than once (signed, then sent), never held whole. */
export interface StreamedBody {
  length: number;
  open(): ReadableStream<Uint8Array>;
}

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
  const encoder = new TextEncoder();
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const slot of body.slots) {
    pieces.push(encoder.encode(body.text.slice(from, slot.at)));
    from = slot.at;
  }
  pieces.push(encoder.encode(body.text.slice(from)));
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

/** A streamed body sent with its length (a Content-Length), as workerd sends a FixedLengthStream. */
export function fixedLength(body: StreamedBody): ReadableStream<Uint8Array> {
  const { readable, writable } = new FixedLengthStream(body.length);
  void body.open().pipeTo(writable).catch(() => undefined);
  return readable;
}

/** A webhook renderer's images: the job's outputs by position, filled in at delivery. */
export const outputPlaces = async (snapshot: { output_keys: string[] }): Promise<Base64Image[]> => snapshot.output_keys.map((_k, i) => new OutputImage(i));

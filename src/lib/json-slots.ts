/**
 * JSON bodies whose images are never built as strings: the text is serialized with each image left
 * out (an empty string), and the images are streamed as base64 into their places as the body is
 * read. The places come from the structure being serialized, never from its text: no string a
 * client sent can name an image, however it is spelled.
 */
import { base64Length, base64Pieces } from "./base64";
import { streamOf } from "./streams";

/** A body's JSON text with every image left out (an empty string), and where each one goes. */
export interface SlottedBody {
  text: string;
  /** Offsets into `text`, ascending, each inside the quotes of an empty string; `output` is which image goes there. */
  slots: { at: number; output: number }[];
}

/** A body of a known size that can be read more than once (signed then sent, or sent again), never held whole. */
export interface StreamedBody {
  length: number;
  open(): ReadableStream<Uint8Array>;
}

/**
 * JSON.stringify's rules (undefined and functions skipped, toJSON honoured), recording a place for
 * each object `slotOf` names an image (its number).
 */
export function serializeWithSlots(value: unknown, slotOf: (v: object) => number | undefined): SlottedBody {
  const parts: string[] = [];
  const slots: SlottedBody["slots"] = [];
  let length = 0;
  const emit = (s: string) => {
    parts.push(s);
    length += s.length;
  };
  const write = (v: unknown): void => {
    const slot = v !== null && typeof v === "object" ? slotOf(v) : undefined;
    if (slot !== undefined) {
      emit('"');
      slots.push({ at: length, output: slot });
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

/** The text around the places, UTF-8: one piece before each place and one after the last. */
export function textPieces(body: SlottedBody): Uint8Array[] {
  const encoder = new TextEncoder();
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const slot of body.slots) {
    pieces.push(encoder.encode(body.text.slice(from, slot.at)));
    from = slot.at;
  }
  pieces.push(encoder.encode(body.text.slice(from)));
  return pieces;
}

/** A streamed body sent with its length (a Content-Length), as workerd sends a FixedLengthStream. */
export function fixedLength(body: StreamedBody): ReadableStream<Uint8Array> {
  const { readable, writable } = new FixedLengthStream(body.length);
  void body.open().pipeTo(writable).catch(() => undefined);
  return readable;
}

/** Bytes that go into a JSON body as base64 (an image in a backend's request), encoded only as the body is sent. */
export class Base64Bytes {
  constructor(readonly bytes: Uint8Array) {}
}

/**
 * `value` as a JSON body, each `Base64Bytes` in it as its base64 string: of an exact length, and
 * opened as often as it is sent, so a 10 MB image is never a 13 MB string, nor a body built whole.
 * Without images, the text itself.
 */
export function jsonBody(value: unknown): string | StreamedBody {
  const images: Uint8Array[] = [];
  const body = serializeWithSlots(value, (v) => (v instanceof Base64Bytes ? images.push(v.bytes) - 1 : undefined));
  if (!images.length) return body.text;
  const pieces = textPieces(body);
  const length = pieces.reduce((n, p) => n + p.byteLength, 0) + images.reduce((n, image) => n + base64Length(image.byteLength), 0);
  const open = () =>
    streamOf(
      (async function* () {
        for (const [n, image] of images.entries()) {
          yield pieces[n] ?? new Uint8Array();
          yield* base64Pieces(image);
        }
        yield pieces[images.length] ?? new Uint8Array();
      })(),
    );
  return { length, open };
}

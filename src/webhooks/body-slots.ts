import { bytesToBase64 } from "../lib/base64";

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

/** The body as sent: each place filled with the base64 of that output, read from R2 now. */
export async function fillSlots(bucket: R2Bucket, body: SlottedBody, outputKeys: string[]): Promise<string> {
  if (!body.slots.length) return body.text;
  const wanted = [...new Set(body.slots.map((s) => s.output))];
  const data = new Map<number, string>();
  await Promise.all(
    wanted.map(async (i) => {
      const key = outputKeys[i];
      const obj = key === undefined ? null : await bucket.get(key);
      data.set(i, obj ? bytesToBase64(new Uint8Array(await obj.arrayBuffer())) : "");
    }),
  );
  const out: string[] = [];
  let from = 0;
  for (const slot of body.slots) {
    out.push(body.text.slice(from, slot.at), data.get(slot.output) ?? "");
    from = slot.at;
  }
  out.push(body.text.slice(from));
  return out.join("");
}

/** A webhook renderer's images: the job's outputs by position, filled in at delivery. */
export const outputPlaces = async (snapshot: { output_keys: string[] }): Promise<Base64Image[]> => snapshot.output_keys.map((_k, i) => new OutputImage(i));

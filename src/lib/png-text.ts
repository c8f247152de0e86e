/**
 * A PNG's text chunks (tEXt, zTXt, iTXt), read the way PIL fills `image.info`: keyword → text,
 * the first chunk of a keyword winning. A1111 keeps its infotext under `parameters`.
 */

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** A text chunk past this is not metadata anyone wrote by hand; stop rather than inflate it. */
const MAX_TEXT_BYTES = 1024 * 1024;

export const isPng = (bytes: Uint8Array): boolean => bytes.length >= 8 && SIGNATURE.every((b, i) => bytes[i] === b);

const latin1 = (b: Uint8Array): string => Array.from(b, (c) => String.fromCharCode(c)).join("");

async function inflate(data: Uint8Array): Promise<Uint8Array | undefined> {
  try {
    const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream("deflate"));
    const out = new Uint8Array(await new Response(stream).arrayBuffer());
    return out.byteLength <= MAX_TEXT_BYTES ? out : undefined;
  } catch {
    return undefined;
  }
}

async function textOf(type: string, data: Uint8Array): Promise<[string, string] | undefined> {
  const nul = data.indexOf(0);
  if (nul < 1) return undefined;
  const keyword = latin1(data.subarray(0, nul));
  if (type === "tEXt") return [keyword, latin1(data.subarray(nul + 1))];
  if (type === "zTXt") {
    const text = await inflate(data.subarray(nul + 2));
    return text ? [keyword, latin1(text)] : undefined;
  }
  // iTXt: keyword, compression flag and method, language tag, translated keyword, UTF-8 text.
  const compressed = data[nul + 1] === 1;
  const lang = data.indexOf(0, nul + 3);
  const translated = lang < 0 ? -1 : data.indexOf(0, lang + 1);
  if (translated < 0) return undefined;
  const raw = data.subarray(translated + 1);
  const text = compressed ? await inflate(raw) : raw;
  return text ? [keyword, new TextDecoder().decode(text)] : undefined;
}

/** The text chunks of a PNG, in file order; an empty object for anything that is not a PNG. */
export async function readPngText(bytes: Uint8Array): Promise<Record<string, string>> {
  // A Map: a keyword such as "__proto__" is data, not a property of the result.
  const out = new Map<string, string>();
  if (!isPng(bytes)) return {};
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = latin1(bytes.subarray(at + 4, at + 8));
    const end = at + 12 + length;
    if (end > bytes.length || type === "IEND") break;
    if ((type === "tEXt" || type === "zTXt" || type === "iTXt") && length <= MAX_TEXT_BYTES) {
      const entry = await textOf(type, bytes.subarray(at + 8, at + 8 + length));
      if (entry && !out.has(entry[0])) out.set(entry[0], entry[1]);
    }
    at = end;
  }
  return Object.fromEntries(out);
}

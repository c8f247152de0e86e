/**
 * Reads a JSON document from a stream without ever holding it whole: the string elements of one
 * array (a backend's base64 images) go to a sink piece by piece as they arrive, and the rest of
 * the document, small once those are out, is parsed as usual with each of them left as "".
 */

/** Receives one streamed string's content, unescaped, in order. */
export interface StringSink {
  write(piece: string): void;
  /** The string ended; awaited before more of the document is read, so one string is in memory at a time. */
  end(): Promise<void>;
}

export interface StreamedJson {
  /** The document with every streamed string as "", or undefined if it is not JSON. */
  value: unknown;
  /** The document's first KiB as text, for an error's log line. */
  head: string;
}

interface Frame {
  kind: "object" | "array";
  /** Object: the key of the value being read; array: unused. */
  key: string | null;
  expectKey: boolean;
}

const HEAD_CHARS = 1024;

/**
 * Parses `body`, streaming to `open(n)` the n-th string found at the object path `at` (["image"])
 * or as an element of the array there (["images"], ["output", "images"]). Any other string longer than `maxString`
 * (an echoed init image) is replaced by "": nothing reads it, and it would cost its size in memory.
 */
export async function parseStreamingJson(body: ReadableStream<Uint8Array>, at: readonly string[], open: (n: number) => StringSink, maxString = 64 * 1024): Promise<StreamedJson> {
  const kept: string[] = [];
  const stack: Frame[] = [];
  let head = "";
  let broken = false;
  let streamedCount = 0;

  // The string being read, if any.
  let inString = false;
  let role: "key" | "kept" | "streamed" = "kept";
  let sink: StringSink | undefined;
  let raw: string[] = [];
  let rawLength = 0;
  let overflow = false;
  /** An escape sequence being read (it may straddle two chunks). */
  let escape = "";

  /** A string at `at` itself (A1111's one upscaled `image`), or an element of the array there. */
  const atImages = (): boolean => {
    const inArray = stack.length === at.length + 1 && stack[at.length]?.kind === "array";
    if (!inArray && stack.length !== at.length) return false;
    for (let i = 0; i < at.length; i++) if (stack[i]?.kind !== "object" || stack[i]?.key !== at[i]) return false;
    return true;
  };

  const addRaw = (s: string) => {
    if (!s) return;
    if (role === "streamed") {
      sink?.write(s);
      return;
    }
    if (overflow) return;
    rawLength += s.length;
    if (role === "kept" && rawLength > maxString) {
      overflow = true;
      raw = [];
      return;
    }
    raw.push(s);
  };

  const endString = async () => {
    inString = false;
    if (role === "streamed") {
      kept.push('""');
      await sink?.end();
      sink = undefined;
      return;
    }
    const text = overflow ? "" : raw.join("");
    raw = [];
    rawLength = 0;
    overflow = false;
    if (role === "key") {
      const top = stack.at(-1);
      if (top) {
        try {
          top.key = JSON.parse(`"${text}"`) as string;
        } catch {
          broken = true;
        }
      }
    }
    kept.push(`"${text}"`);
  };

  const decoder = new TextDecoder();
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    const text = done ? decoder.decode() : decoder.decode(value, { stream: true });
    if (head.length < HEAD_CHARS) head += text.slice(0, HEAD_CHARS - head.length);
    let i = 0;
    while (i < text.length && !broken) {
      if (inString) {
        if (escape) {
          // "\uXXXX" is six characters, every other escape two.
          const need = escape[1] === "u" || (escape.length === 1 && text[i] === "u") ? 6 : 2;
          const take = Math.min(need - escape.length, text.length - i);
          escape += text.slice(i, i + take);
          i += take;
          if (escape.length < need) continue;
          if (role === "streamed") {
            try {
              addRaw(JSON.parse(`"${escape}"`) as string);
            } catch {
              broken = true;
            }
          } else addRaw(escape);
          escape = "";
          continue;
        }
        let j = i;
        while (j < text.length) {
          const c = text.charCodeAt(j);
          if (c === 0x22 || c === 0x5c) break;
          j++;
        }
        addRaw(text.slice(i, j));
        if (j === text.length) {
          i = j;
          break;
        }
        if (text.charCodeAt(j) === 0x5c) {
          escape = "\\";
          i = j + 1;
          continue;
        }
        i = j + 1;
        await endString();
        continue;
      }
      const ch = text[i] ?? "";
      i++;
      switch (ch) {
        case " ":
        case "\n":
        case "\r":
        case "\t":
          break;
        case '"': {
          inString = true;
          const top = stack.at(-1);
          if (top?.kind === "object" && top.expectKey) role = "key";
          else if (atImages()) {
            role = "streamed";
            sink = open(streamedCount++);
          } else role = "kept";
          break;
        }
        case "{":
          stack.push({ kind: "object", key: null, expectKey: true });
          kept.push(ch);
          break;
        case "[":
          stack.push({ kind: "array", key: null, expectKey: false });
          kept.push(ch);
          break;
        case "}":
        case "]":
          if (stack.pop()?.kind !== (ch === "}" ? "object" : "array")) broken = true;
          kept.push(ch);
          break;
        case ",": {
          const top = stack.at(-1);
          if (top?.kind === "object") top.expectKey = true;
          kept.push(ch);
          break;
        }
        case ":": {
          const top = stack.at(-1);
          if (top?.kind === "object") top.expectKey = false;
          kept.push(ch);
          break;
        }
        default:
          kept.push(ch);
      }
    }
    if (done || broken) break;
  }
  if (broken) await reader.cancel().catch(() => undefined);
  if (broken || inString) return { value: undefined, head };
  try {
    return { value: JSON.parse(kept.join("")), head };
  } catch {
    return { value: undefined, head };
  }
}

/**
 * The same reading of a document already in memory (an answer small enough to hold whole): the
 * runtime's own parser, far faster than the character-by-character one above, then the strings
 * at `at` handed to their sinks in document order and every other string over `maxString` emptied.
 */
export async function parseJsonText(text: string, at: readonly string[], open: (n: number) => StringSink, maxString = 64 * 1024): Promise<StreamedJson> {
  const head = text.slice(0, HEAD_CHARS);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { value: undefined, head };
  }
  // The walk is synchronous (an await per node costs more than the walk itself on a large
  // answer): it empties the strings at `at`, and their sinks get them afterwards, in its order.
  const pieces: string[] = [];
  const isAt = (path: readonly string[]): boolean => path.length === at.length && path.every((k, i) => k === at[i]);
  const take = (piece: string): string => {
    pieces.push(piece);
    return "";
  };
  // `path` is the object keys down to `v`, or null once inside an array that is not the images'.
  const walk = (v: unknown, path: readonly string[] | null): unknown => {
    if (typeof v === "string") return path && isAt(path) ? take(v) : v.length > maxString ? "" : v;
    if (Array.isArray(v)) {
      const images = path !== null && isAt(path);
      return v.map((item) => (images && typeof item === "string" ? take(item) : walk(item, null)));
    }
    if (v !== null && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, path ? [...path, k] : null);
      return out;
    }
    return v;
  };
  const walked = walk(value, []);
  for (const [n, piece] of pieces.entries()) {
    const sink = open(n);
    sink.write(piece);
    await sink.end();
  }
  return { value: walked, head };
}

/** A document already in memory (a small callback body), read the same way. */
export const textStream = (text: string): ReadableStream<Uint8Array> =>
  new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(text));
      controller.close();
    },
  });

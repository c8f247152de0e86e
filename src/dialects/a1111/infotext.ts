/**
 * A1111's infotext (the `parameters` text chunk of its PNGs) read back into fields, as its
 * `parse_generation_parameters` does for `POST /sdapi/v1/png-info`: the prompt, the negative
 * prompt, then `Key: value` pairs from the last line, values kept as the strings they were.
 */
import type { Env } from "../../env";
import { base64ToBytes } from "../../lib/base64";
import { readPngText } from "../../lib/png-text";

const PARAM = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;
const SIZE = /^(\d+)x(\d+)$/;

/** What A1111 fills in when an infotext leaves a field out (the defaults it would have used). */
const DEFAULTS: Record<string, string | number> = {
  "Clip skip": "1",
  "Hires resize-1": 0,
  "Hires resize-2": 0,
  "Hires sampler": "Use same sampler",
  "Hires schedule type": "Use same scheduler",
  "Hires checkpoint": "Use same checkpoint",
  "Hires prompt": "",
  "Hires negative prompt": "",
  "Mask mode": "Inpaint masked",
  "Masked content": "original",
  "Inpaint area": "Whole picture",
  "Masked area padding": 32,
  RNG: "GPU",
  "Schedule type": "Automatic",
  "Schedule max sigma": 0,
  "Schedule min sigma": 0,
  "Schedule rho": 0,
  "VAE Encoder": "Full",
  "VAE Decoder": "Full",
  "FP8 weight": "Disable",
};

function unquote(v: string): string {
  try {
    const s: unknown = JSON.parse(v);
    return typeof s === "string" ? s : v;
  } catch {
    return v;
  }
}

export function parseInfotext(text: string): Record<string, string | number> {
  const lines = text.trim().split("\n");
  let last = lines.pop() ?? "";
  if ([...last.matchAll(PARAM)].length < 3) {
    lines.push(last);
    last = "";
  }
  let prompt = "";
  let negative = "";
  let inNegative = false;
  for (const raw of lines) {
    let line = raw.trim();
    if (line.startsWith("Negative prompt:")) {
      inNegative = true;
      line = line.slice(16).trim();
    }
    if (inNegative) negative += (negative ? "\n" : "") + line;
    else prompt += (prompt ? "\n" : "") + line;
  }
  // A Map first: a key such as "__proto__" in someone's PNG is data, not a property.
  const res = new Map<string, string | number>([
    ["Prompt", prompt],
    ["Negative prompt", negative],
  ]);
  for (const [, key = "", value = ""] of last.matchAll(PARAM)) {
    const v = value.startsWith('"') && value.endsWith('"') ? unquote(value) : value;
    const size = SIZE.exec(v);
    if (size) {
      res.set(`${key}-1`, size[1] ?? "");
      res.set(`${key}-2`, size[2] ?? "");
    } else res.set(key, v);
  }
  for (const [k, v] of Object.entries(DEFAULTS)) if (!res.has(k)) res.set(k, v);
  return Object.fromEntries(res);
}

/**
 * `POST /sdapi/v1/png-info`: `info` is the `parameters` chunk (empty when there is none),
 * `items` the other text chunks, `parameters` the infotext read into fields. `image` is base64,
 * with or without a data URI prefix; undefined when it is not base64 at all.
 */
export async function pngInfo(image: string): Promise<{ info: string; items: Record<string, string>; parameters: Record<string, string | number> } | undefined> {
  const bytes = base64ToBytes(image.trim().replace(/^data:[^,]*,/, ""));
  if (!bytes) return undefined;
  const { parameters, ...items } = await readPngText(bytes);
  const info = parameters ?? "";
  return { info, items, parameters: parseInfotext(info) };
}

/**
 * A PNG's text chunks come before its pixels (PIL writes them so, as A1111 saves): the start of
 * an output holds its infotext.
 */
const TEXT_BYTES = 256 * 1024;

/** The infotext each output carries (its PNG `parameters` chunk), as the backend wrote it; undefined where none. */
export async function writtenInfotexts(env: Env, outputKeys: string[]): Promise<(string | undefined)[]> {
  return Promise.all(
    outputKeys.map(async (key) => {
      const obj = await env.IMAGES.get(key, { range: { offset: 0, length: TEXT_BYTES } });
      return obj ? (await readPngText(new Uint8Array(await obj.arrayBuffer()))).parameters : undefined;
    }),
  );
}

/** A checkpoint's title, `name.safetensors [hash]`, as A1111 names the model in `info`: its file name without extension, its short hash. */
function titleParts(title: string): { name: string; hash: string | null } {
  const hash = /\[([0-9a-f]+)\]\s*$/i.exec(title)?.[1] ?? null;
  const file = title.replace(/\s*\[[0-9a-f]+\]\s*$/i, "").trim();
  return { name: (file.split(/[\\/]/).pop() ?? file).replace(/\.(safetensors|ckpt)$/i, ""), hash };
}

/**
 * The model an answer names (`sd_model_name`, `sd_model_hash`): as the backend wrote it in the
 * image's infotext, else from the job's checkpoint; null only when neither says.
 */
export function modelOf(written: string | undefined, checkpoint: string | null | undefined): { name: string | null; hash: string | null } {
  const fields = written ? parseInfotext(written) : {};
  const said = (key: string) => {
    const v = fields[key];
    return typeof v === "string" && v ? v : undefined;
  };
  const name = said("Model");
  const hash = said("Model hash");
  // A hash never goes with another model's name.
  if (name) return { name, hash: hash ?? null };
  const title = checkpoint ? titleParts(checkpoint) : undefined;
  return { name: title?.name ?? null, hash: hash ?? title?.hash ?? null };
}

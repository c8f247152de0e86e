/**
 * ComfyUI's files as Easel keeps them: uploads in R2 under the tenant's own prefix, outputs as the
 * prompt's job stored them. Every name and subfolder a client sends is checked segment by segment
 * (src/lib/storage-key.ts) before it becomes part of a key, so no client reaches outside its tenant.
 */
import { invalid } from "../../errors";
import { keyPathProblem, keySegmentProblem } from "../../lib/storage-key";

export const FILE_TYPES = ["input", "temp", "output"] as const;
export type FileType = (typeof FILE_TYPES)[number];
const MAX_NAME = 128;
const MAX_SUBFOLDER = 256;

const EXTENSIONS: Record<string, string> = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" };

/**
 * The name an output is shown under: the run id and the output's place, so `/view` finds the job's
 * R2 object from the name alone, and only for the job's own tenant (the job answers only to it).
 */
export const outputName = (runId: string, index: number, contentType: string): string => `${runId}_${String(index).padStart(5, "0")}_.${EXTENSIONS[contentType] ?? "png"}`;

export function parseOutputName(name: string): { runId: string; index: number } | undefined {
  const m = name.match(/^(run_[a-z2-7]+)_(\d{5})_\.(png|jpg|webp)$/);
  return m?.[1] && m[2] ? { runId: m[1], index: Number(m[2]) } : undefined;
}

/** A file type as ComfyUI names them; anything else is a 4xx naming `field`. */
export function fileType(value: string | undefined, field: string, fallback: FileType): FileType {
  if (value === undefined || value === "") return fallback;
  const found = FILE_TYPES.find((t) => t === value);
  if (!found) throw invalid(field, `must be one of ${FILE_TYPES.join(", ")}`);
  return found;
}

export function checkName(name: string, field: string): string {
  if (!name || name.length > MAX_NAME) throw invalid(field, `must be 1–${MAX_NAME} characters`);
  const problem = keySegmentProblem(name);
  if (problem) throw invalid(field, problem);
  return name;
}

/** A subfolder ("" for none): its segments checked one by one. */
export function checkSubfolder(subfolder: string, field: string): string {
  if (subfolder === "") return "";
  if (subfolder.length > MAX_SUBFOLDER) throw invalid(field, `must be at most ${MAX_SUBFOLDER} characters`);
  const problem = keyPathProblem(subfolder);
  if (problem) throw invalid(field, problem);
  return subfolder;
}

/** The R2 key of a tenant's uploaded file (the tenant name encoded: it is one segment whatever it holds). */
export const uploadKey = (tenant: string, type: FileType, subfolder: string, name: string): string =>
  ["comfy", encodeURIComponent(tenant), type, ...(subfolder ? [subfolder] : []), name].join("/");

/** ComfyUI's name for a clash when not overwriting: `cat (1).png`, `cat (2).png`... */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? `${name.slice(0, dot)} (${n})${name.slice(dot)}` : `${name} (${n})`;
}

/** How a graph names an input file: `sub/cat.png`, maybe annotated ` [input]` as ComfyUI's frontend writes it. */
export function inputPath(value: string): { subfolder: string; name: string; type: FileType } {
  const m = value.match(/^(.*?)\s*\[(input|output|temp)\]$/);
  const path = m?.[1] ?? value;
  const type = fileType(m?.[2], "prompt", "input");
  const slash = path.lastIndexOf("/");
  return { subfolder: slash < 0 ? "" : path.slice(0, slash), name: path.slice(slash + 1), type };
}

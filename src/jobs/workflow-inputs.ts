/**
 * A `workflow` job's graph and named input images, checked at intake for every API that submits
 * graphs: a problem is a 422 naming the node, or the image, in the client's own field names.
 */
import { EaselError, type ErrorDetail } from "../errors";
import { readImageInput, type ImageInputOptions } from "../lib/image-input";
import { checkImage } from "../lib/image-check";
import { base64StartsAnImage } from "../lib/image-sniff";
import { keySegmentProblem } from "../lib/storage-key";
import { MAX_WORKFLOW_IMAGES } from "../schemas/job";
import type { Workflow } from "./spec";
import { RUN_ID_PATTERN } from "./run-id";
import { graphIssues } from "./workflow-graph";

/** A name ComfyUI's upload keeps as given: longer ones are not file names a graph would hold. */
const MAX_IMAGE_NAME = 128;

const refused = (details: ErrorDetail[]): EaselError => new EaselError(422, "validation_failed", details.map((d) => `${d.path}: ${d.message}`).join("; "), details);
const joinPath = (...parts: string[]): string => parts.filter((p) => p !== "").join(".");

/** ComfyUI's nodes that load a file by name (`inputs.image`). */
export const LOADERS: ReadonlySet<string> = new Set(["LoadImage", "LoadImageMask", "LoadImageOutput"]);

/**
 * The name every attempt gives the images it hands a ComfyUI backend (`<run id>-<attempt>-<name>`):
 * on a shared backend, another job's files.
 */
export const ATTEMPT_UPLOAD = new RegExp(`^${RUN_ID_PATTERN}-\\d+-`);

/**
 * Why a loader's file, one the job does not bring, is not the graph's to load; undefined when it may
 * be the backend's own input file. A shared backend also holds every other job's uploads and outputs:
 * ComfyUI reaches outputs by `[output]`/`[temp]` annotations, by LoadImageOutput, or by a `..` path.
 */
function foreignFileProblem(classType: string, value: string): string | undefined {
  const annotated = value.match(/\s*\[(input|output|temp)\]$/);
  if (classType === "LoadImageOutput" || (annotated && annotated[1] !== "input")) return "loads the backend's outputs, which are other jobs' files: give the image with the job instead";
  const path = annotated ? value.slice(0, annotated.index) : value;
  if (path.startsWith("/") || path.includes("\\") || path.split("/").some((s) => s === ".." || s === ".")) return "a file name or a subfolder path in the backend's input folder: no absolute path, no . or .., no backslash";
  if (ATTEMPT_UPLOAD.test(path.slice(path.lastIndexOf("/") + 1))) return "is another job's upload on the backend: give the image with the job instead";
  return undefined;
}

/**
 * Inputs that name a file on the backend: those of ComfyUI's own loaders (LoadImage's and
 * WebcamCapture's `image`, LoadVideo's `file`, LoadAudio's `audio`, LoadLatent's `latent`...) and
 * the names custom loaders give theirs. Any of them resolves `[output]` annotations and paths.
 */
const FILE_INPUTS: ReadonlySet<string> = new Set(["image", "mask", "file", "audio", "video", "latent", "model_file", "filename", "filepath", "file_path", "path", "image_path", "video_path", "audio_path", "folder", "directory"]);
/** Whether a node's input names a file on the backend. */
export const namesFile = (classType: string, input: string): boolean => (LOADERS.has(classType) && input === "image") || FILE_INPUTS.has(input);

/**
 * ComfyUI's annotated_filepath: a name ending `[output]` or `[temp]`, less 9 or 7 characters (the
 * space before it, or whatever stands there), is that folder's file. On any node's input, whatever
 * its name (a custom loader's), what is left with a file's extension is one; text is text.
 */
function annotatedFile(value: string): string | undefined {
  const m = /\[(output|temp)\]$/.exec(value);
  return m ? value.slice(0, m[1] === "output" ? -9 : -7) : undefined;
}
const WITH_EXTENSION = /\.[A-Za-z]\w*$/;

/**
 * Every file the graph's nodes name that the job does not bring (`provided`: its images' names),
 * checked: only the backend's own input files may be named, never another job's uploads or outputs.
 */
export function checkLoadedFiles(graph: Workflow, provided: ReadonlySet<string>, field: string): void {
  const problems: ErrorDetail[] = [];
  for (const [id, node] of Object.entries(graph)) {
    for (const [name, value] of Object.entries(node.inputs)) {
      // An image given as base64 to a node that decodes it (comfyui-tooling-nodes' LoadImageBase64,
      // as Krita's plugin sends it; a JPEG's starts with /9j/) names no file.
      if (typeof value !== "string" || provided.has(value) || base64StartsAnImage(value)) continue;
      if (!namesFile(node.class_type, name) && !WITH_EXTENSION.test(annotatedFile(value) ?? "")) continue;
      const problem = foreignFileProblem(node.class_type, value);
      if (problem) problems.push({ path: joinPath(field, id, "inputs", name), message: `"${value}" ${problem}` });
    }
  }
  if (problems.length) throw refused(problems);
}

/** The graph, once it passed every check; `field` is where the client put it (`workflow`, `task.content`...). */
export function checkedWorkflow(graph: unknown, field: string): Workflow {
  const issues = graphIssues(graph);
  if (issues.length) throw refused(issues.map((i) => ({ path: joinPath(field, ...i.path) || "(body)", message: i.message })));
  return graph as Workflow;
}

/** Why `name` cannot be an input image's name: a plain file name, never a path. */
function imageNameProblem(name: string): string | undefined {
  if (!name) return "required: a file name";
  if (name.length > MAX_IMAGE_NAME) return `at most ${MAX_IMAGE_NAME} characters`;
  if (name.includes("..")) return "a plain file name: no ..";
  const problem = keySegmentProblem(name);
  return problem ? `a plain file name: ${problem}` : undefined;
}

export interface InputImage {
  name: string;
  bytes: Uint8Array;
}

/** The images' names, checked before anything is fetched: plain file names, each given once. */
export function checkImageNames(images: { name: string }[], field: string): void {
  if (images.length > MAX_WORKFLOW_IMAGES) throw refused([{ path: field, message: `at most ${MAX_WORKFLOW_IMAGES} images` }]);
  const seen = new Set<string>();
  const problems: ErrorDetail[] = [];
  images.forEach(({ name }, i) => {
    const problem = imageNameProblem(name) ?? (seen.has(name) ? `"${name}" is given twice` : undefined);
    if (problem) problems.push({ path: joinPath(field, String(i), "name"), message: problem });
    seen.add(name);
  });
  if (problems.length) throw refused(problems);
}

/** Each named image (its name checked by `checkImageNames`) read and checked as an init image is: URL rules, size, a real PNG/JPEG/WebP. */
export async function readInputImages(
  images: { name: string; image: string | Uint8Array }[],
  opts: Pick<ImageInputOptions, "field" | "allowPrivate" | "maxBytes" | "local">,
): Promise<InputImage[]> {
  return Promise.all(
    images.map(async ({ name, image }, i) => {
      const field = joinPath(opts.field, String(i), "image");
      if (typeof image === "string") return { name, bytes: (await readImageInput(image, { ...opts, field })).bytes };
      if (image.byteLength > opts.maxBytes) throw new EaselError(422, "image_too_large", `${field}: image is over ${opts.maxBytes} bytes`, [{ path: field, message: `image is over ${opts.maxBytes} bytes` }]);
      const checked = checkImage(image);
      if (!checked.ok) throw new EaselError(422, checked.code, `${field}: ${checked.message}`, [{ path: field, message: checked.message }]);
      return { name, bytes: image };
    }),
  );
}

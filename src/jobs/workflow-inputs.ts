/**
 * A `workflow` job's graph and named input images, checked at intake for every API that submits
 * graphs: a problem is a 422 naming the node, or the image, in the client's own field names.
 */
import { EaselError, type ErrorDetail } from "../errors";
import { readImageInput } from "../lib/image-input";
import { sniffImage } from "../lib/image-sniff";
import { keySegmentProblem } from "../lib/storage-key";
import { MAX_WORKFLOW_IMAGES } from "../schemas/job";
import type { Workflow } from "./spec";
import { graphIssues } from "./workflow-graph";

/** A name ComfyUI's upload keeps as given: longer ones are not file names a graph would hold. */
const MAX_IMAGE_NAME = 128;

const refused = (details: ErrorDetail[]): EaselError => new EaselError(422, "validation_failed", details.map((d) => `${d.path}: ${d.message}`).join("; "), details);
const joinPath = (...parts: string[]): string => parts.filter((p) => p !== "").join(".");

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
  opts: { field: string; allowPrivate: boolean; maxBytes: number },
): Promise<InputImage[]> {
  return Promise.all(
    images.map(async ({ name, image }, i) => {
      const field = joinPath(opts.field, String(i), "image");
      if (typeof image === "string") return { name, bytes: (await readImageInput(image, { field, allowPrivate: opts.allowPrivate, maxBytes: opts.maxBytes })).bytes };
      if (image.byteLength > opts.maxBytes) throw new EaselError(422, "image_too_large", `${field}: image is over ${opts.maxBytes} bytes`, [{ path: field, message: `image is over ${opts.maxBytes} bytes` }]);
      if (!sniffImage(image)) throw new EaselError(422, "invalid_image", `${field}: not a PNG, JPEG or WebP image`, [{ path: field, message: "not a PNG, JPEG or WebP image" }]);
      return { name, bytes: image };
    }),
  );
}

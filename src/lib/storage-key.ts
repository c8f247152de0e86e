/**
 * The one check for client strings that become parts of storage keys (R2) or S3 URLs, on the read
 * and the write path alike. A URL parser folds "." and ".." segments (and `%2e`) away, some stores
 * and tools read `\` or an empty segment as a separator, and a control character is never a name:
 * any of them would let a client reach outside the place it was given.
 */

const CONTROL = /[\u0000-\u001f\u007f]/;
/**
 * Percent-escapes of what is refused in plain form: `.` (%2e), `/` (%2f), `\` (%5c), the control
 * characters (%00–%1f, %7f), and `%` itself (%25), which refuses every double encoding (`%252e`).
 * Other escapes (`%20`) are plain characters of the name: keys are encoded again when put in a URL.
 */
const ENCODED = /%(?:2e|2f|5c|25|[01][0-9a-f]|7f)/i;

/** Why `segment` cannot be one segment of a key, or undefined when it can. */
function segmentProblem(segment: string): string | undefined {
  if (segment === "") return "has an empty segment (a leading, trailing or doubled /)";
  if (segment === "." || segment === "..") return "has a . or .. segment";
  if (segment.includes("\\")) return "has a backslash";
  if (CONTROL.test(segment)) return "has a control character";
  if (ENCODED.test(segment)) return "has a percent-encoded . / \\ % or control character";
  return undefined;
}

/** Why `path` (segments split on `/`) cannot be part of a key, or undefined when it can. */
export function keyPathProblem(path: string): string | undefined {
  for (const segment of path.split("/")) {
    const problem = segmentProblem(segment);
    if (problem) return problem;
  }
  return undefined;
}

/** Why `name` cannot be exactly one segment of a key (no `/` at all), or undefined when it can. */
export function keySegmentProblem(name: string): string | undefined {
  return name.includes("/") ? "has a /" : segmentProblem(name);
}

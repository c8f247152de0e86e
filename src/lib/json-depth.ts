/**
 * How deeply a JSON text nests its arrays and objects, read without parsing it: code that walks a
 * value recursively (ours, a backend's, a client library's) overflows its stack on thousands of
 * levels, while no request of any API this gateway speaks needs more than a dozen.
 */

/** A JSON string (skipped whole: a base64 image is one step) or a bracket. */
const TOKEN = /"[^"\\]*(?:\\.[^"\\]*)*"|[[\]{}]/g;

/** Whether `text` opens more than `max` arrays and objects inside one another. */
export function nestsDeeperThan(text: string, max: number): boolean {
  // Fewer opening brackets than the limit cannot nest past it: two native scans settle most bodies.
  let opens = 0;
  for (const bracket of ["{", "["]) {
    for (let i = text.indexOf(bracket); i !== -1 && opens <= max; i = text.indexOf(bracket, i + 1)) opens++;
  }
  if (opens <= max) return false;
  let depth = 0;
  for (const [token] of text.matchAll(TOKEN)) {
    if (token === "{" || token === "[") {
      if (++depth > max) return true;
    } else if (token === "}" || token === "]") depth--;
  }
  return false;
}

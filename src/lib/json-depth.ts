/**
 * How deeply a JSON text nests its arrays and objects, read without parsing it: code that walks a
 * value recursively (ours, a backend's, a client library's) overflows its stack on thousands of
 * levels, while no request of any API this gateway speaks needs more than a dozen. Linear in the
 * text whatever it holds (it runs before a request's key is checked): each character is looked at
 * a bounded number of times.
 */

const QUOTE = 34;
const BACKSLASH = 92;
const OPENS = new Set([123, 91]);
const CLOSES = new Set([125, 93]);

/** The index of the quote that ends the string opened just before `from` (-1: it never ends). */
function stringEnd(text: string, from: number): number {
  for (let quote = text.indexOf('"', from); quote !== -1; quote = text.indexOf('"', quote + 1)) {
    // Escaped when an odd run of backslashes stands before it: each run is counted once.
    let slashes = 0;
    for (let k = quote - 1; k >= from && text.charCodeAt(k) === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return quote;
  }
  return -1;
}

/** Whether `text` opens more than `max` arrays and objects inside one another. */
export function nestsDeeperThan(text: string, max: number): boolean {
  // Fewer opening brackets than the limit cannot nest past it: two native scans settle most bodies.
  let opens = 0;
  for (const bracket of ["{", "["]) {
    for (let i = text.indexOf(bracket); i !== -1 && opens <= max; i = text.indexOf(bracket, i + 1)) opens++;
  }
  if (opens <= max) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i + 1);
      // An unterminated string is malformed JSON: its parser says so, no deeper than reached.
      if (i === -1) return false;
    } else if (OPENS.has(c)) {
      if (++depth > max) return true;
    } else if (CLOSES.has(c)) depth--;
  }
  return false;
}

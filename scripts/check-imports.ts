/**
 * `npm run check:imports` (and .ci/run): holds the direction of imports between the Worker (src/)
 * and its Durable Objects (durable-objects/). Fails on an import from src/ into
 * durable-objects/ (only the entry, src/index.ts, exports the classes wrangler binds), on an import
 * of a dialect (src/dialects/) from durable-objects/ (bodies are rendered through
 * src/contracts/renderers.ts), and on any import circle. Type-only imports count too: the Worker types
 * its stubs by the RPC surfaces in src/contracts/rpc.ts, never by the classes.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const DIRS = ["src", "durable-objects"];
/** The Worker's entry: it must export the Durable Object classes named in wrangler.toml. */
const ENTRY = "src/index.ts";

const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return path.endsWith(".ts") && !path.endsWith(".d.ts") ? [path] : [];
  });

/** `import`/`export ... from` statements (type-only ones included), and bare `import "x"`. */
const STATEMENT = /(?:^|\n)\s*(import|export)\s+([^;'"]*?)\s*from\s*["']([^"']+)["']|(?:^|\n)\s*import\s*["']([^"']+)["']/g;


const resolveImport = (from: string, spec: string): string | undefined => {
  if (!spec.startsWith(".")) return undefined;
  const base = resolve(dirname(from), spec);
  return [`${base}.ts`, join(base, "index.ts"), base].find((p) => existsSync(p) && statSync(p).isFile());
};

const graph = new Map<string, string[]>();
for (const file of DIRS.flatMap((d) => files(join(root, d)))) {
  const text = readFileSync(file, "utf8");
  const deps: string[] = [];
  for (const m of text.matchAll(STATEMENT)) {
    const spec = m[3] ?? m[4];
    if (!spec) continue;
    const target = resolveImport(file, spec);
    if (target) deps.push(target);
  }
  graph.set(file, deps);
}

const rel = (p: string): string => relative(root, p);
const problems: string[] = [];

for (const [file, deps] of graph) {
  if (!rel(file).startsWith("src/") || rel(file) === ENTRY) continue;
  for (const dep of deps) if (rel(dep).startsWith("durable-objects/")) problems.push(`import from src/ into durable-objects/: ${rel(file)} -> ${rel(dep)}`);
}
for (const [file, deps] of graph) {
  if (!rel(file).startsWith("durable-objects/")) continue;
  for (const dep of deps) if (rel(dep).startsWith("src/dialects/")) problems.push(`a dialect imported by a Durable Object: ${rel(file)} -> ${rel(dep)}`);
}

// Depth-first search; a dependency met while still on the path closes a circle.
const state = new Map<string, "open" | "done">();
const path: string[] = [];
const visit = (file: string): void => {
  state.set(file, "open");
  path.push(file);
  for (const dep of graph.get(file) ?? []) {
    const s = state.get(dep);
    if (s === "open") problems.push(`import circle: ${[...path.slice(path.indexOf(dep)), dep].map(rel).join(" -> ")}`);
    else if (s === undefined) visit(dep);
  }
  path.pop();
  state.set(file, "done");
};
for (const file of graph.keys()) if (!state.has(file)) visit(file);

if (problems.length) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`imports ok: ${graph.size} files, no import (not even a type) from src/ into durable-objects/ or from durable-objects/ into a dialect, no circle`);

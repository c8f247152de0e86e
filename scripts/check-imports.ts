/**
 * `npm run check:imports` (and .ci/run): holds the direction of imports between the Worker (src/)
 * and its Durable Objects (durable-objects/). Fails on a runtime import from src/ into
 * durable-objects/ (only the entry, src/index.ts, exports the classes wrangler binds), on an import
 * of a dialect (src/dialects/) from durable-objects/ (bodies are rendered through
 * src/contracts/renderers.ts), and on any import circle among runtime imports. Type-only imports are erased at build time and ignored.
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

/** `import`/`export ... from` statements, and bare `import "x"`; the clause tells whether it is type-only. */
const STATEMENT = /(?:^|\n)\s*(import|export)\s+([^;'"]*?)\s*from\s*["']([^"']+)["']|(?:^|\n)\s*import\s*["']([^"']+)["']/g;

/** Whether a clause brings in no value: `type X`, `type { X }`, or `{ type X, type Y }`. */
const typeOnly = (clause: string): boolean => {
  if (/^type\s/.test(clause)) return true;
  const named = /^\{([\s\S]*)\}$/.exec(clause.trim());
  if (!named) return false;
  const parts = named[1]!.split(",").map((p) => p.trim()).filter(Boolean);
  return parts.length > 0 && parts.every((p) => p.startsWith("type "));
};

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
    if (!spec || (m[3] && typeOnly(m[2] ?? ""))) continue;
    const target = resolveImport(file, spec);
    if (target) deps.push(target);
  }
  graph.set(file, deps);
}

const rel = (p: string): string => relative(root, p);
const problems: string[] = [];

for (const [file, deps] of graph) {
  if (!rel(file).startsWith("src/") || rel(file) === ENTRY) continue;
  for (const dep of deps) if (rel(dep).startsWith("durable-objects/")) problems.push(`runtime import from src/ into durable-objects/: ${rel(file)} -> ${rel(dep)}`);
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
console.log(`imports ok: ${graph.size} files, no runtime import from src/ into durable-objects/ or from durable-objects/ into a dialect, no circle`);

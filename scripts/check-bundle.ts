/**
 * `npm run check:bundle` (and .ci/run): builds the Worker as `wrangler deploy` would, without
 * deploying, and fails when it does not build or its gzip size passes MAX_GZIP_BYTES. Cloudflare
 * refuses a Worker over 3 MiB gzip on the free plan (10 MiB paid); the cap leaves room below that
 * and catches a dependency that balloons the bundle long before a deploy does.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

/** About 4x the bundle measured when this check was added (1.2 MB, 227 KiB gzip). */
const MAX_GZIP_BYTES = 1024 * 1024;
const BUILD_TIMEOUT_MS = 180_000;

const root = fileURLToPath(new URL("..", import.meta.url));
// Inside the repository's gitignored .tmp/.
const outdir = join(root, ".tmp", "bundle");
rmSync(outdir, { recursive: true, force: true });

const build = spawnSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outdir], {
  cwd: root,
  stdio: ["ignore", "pipe", "pipe"],
  timeout: BUILD_TIMEOUT_MS,
  env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
if (build.status !== 0) {
  process.stderr.write(build.stdout ?? "");
  process.stderr.write(build.stderr ?? "");
  console.error(`check:bundle: the Worker did not build (${build.error?.message ?? `exit ${build.status ?? build.signal}`})`);
  process.exit(1);
}

const modules = readdirSync(outdir).filter((f) => /\.(m?js|wasm)$/.test(f));
if (!modules.length) {
  console.error("check:bundle: wrangler wrote no module");
  process.exit(1);
}
let raw = 0;
let gzip = 0;
for (const f of modules) {
  const bytes = readFileSync(join(outdir, f));
  raw += bytes.byteLength;
  gzip += gzipSync(bytes, { level: 9 }).byteLength;
}
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`check:bundle: ${modules.join(", ")}: ${kib(raw)}, gzip ${kib(gzip)} (limit here ${kib(MAX_GZIP_BYTES)}; Cloudflare: 3 MiB free, 10 MiB paid)`);
if (gzip > MAX_GZIP_BYTES) {
  console.error(`check:bundle: gzip size ${kib(gzip)} is over ${kib(MAX_GZIP_BYTES)}`);
  process.exit(1);
}

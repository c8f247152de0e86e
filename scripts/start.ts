/**
 * `npm start`: the gateway under `wrangler dev` on 127.0.0.1:8787 with the GPU-backend
 * simulator on 127.0.0.1:7860 as its default backend. Ctrl-C stops both.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "node:net";
import { ensureDevVars, readDotenv, writePrivateEnvFile } from "./dev-vars";

const SIM_PORT = Number(process.env.SIM_PORT ?? 7860);
/** Contract variables taken from the environment, so a deployment-like run needs no file. */
const PASSED_THROUGH = ["TENANTS", "BACKENDS", "ENDPOINTS", "S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_OUTPUT_BUCKET", "PUBLIC_BASE_URL", "WEBHOOK_RETRY_SCHEDULE", "ALLOW_PRIVATE_URLS", "URL_SIGNING_SECRET", "RETENTION_S", "R2_BUCKET_NAME"];

const portInUse = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.setTimeout(1000);
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("timeout", () => (socket.destroy(), resolve(false)));
    socket.once("error", () => resolve(false));
  });

const made = ensureDevVars(".", process.env);
if (made.copied) console.log("created .dev.vars from .dev.vars.example");
if (made.keyWritten) console.log("wrote a random URL_SIGNING_SECRET into .dev.vars");

/** A variable as wrangler will see it: the environment first, then .dev.vars. */
const effective = (name: string): string => process.env[name] || readDotenv(".dev.vars", name) || "";
const effectiveBackends = () => effective("BACKENDS");

const children: ChildProcess[] = [];
// The simulator runs only when the configuration points at it, and only if nothing (someone
// else's simulator, a real A1111) already listens on its port.
const wantsSimulator = new RegExp(`(127\\.0\\.0\\.1|localhost):${SIM_PORT}\\b`).test(effectiveBackends());
if (wantsSimulator && !process.env.EASEL_NO_SIMULATOR && !(await portInUse(SIM_PORT))) {
  children.push(spawn(process.execPath, ["--import", "tsx", "gpu-simulator/main.ts", "--port", String(SIM_PORT)], { stdio: "inherit" }));
}
// Variables from the environment reach wrangler in a private file, never as arguments (`ps` shows
// those to everyone). With --env-file wrangler reads no .dev.vars of its own: it comes first, and
// the environment's values override it.
const fromEnvironment = Object.fromEntries(PASSED_THROUGH.flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name] ?? ""]])));
const overrides = Object.keys(fromEnvironment).length > 0 ? writePrivateEnvFile(fromEnvironment) : undefined;
const envFiles = overrides ? [...(existsSync(".dev.vars") ? ["--env-file", ".dev.vars"] : []), "--env-file", overrides.path] : [];
const registry = process.env.WRANGLER_REGISTRY_PATH ? undefined : mkdtempSync(join(tmpdir(), "easel-registry-"));
children.push(
  // wrangler itself, not through npx: a signal to this process then reaches it, with no shell between.
  spawn(join("node_modules", ".bin", "wrangler"), ["dev", "--ip", "127.0.0.1", "--port", process.env.PORT ?? "8787", "--show-interactive-dev-session=false", ...envFiles], {
    stdio: "inherit",
    // A dev registry of its own (unless one is given): another `wrangler dev` on this machine that
    // dies hard would otherwise reload this one some seconds later, cutting requests in flight.
    env: { ...(registry ? { WRANGLER_REGISTRY_PATH: registry } : {}), ...process.env, WRANGLER_SEND_METRICS: "false" },
  }),
);

let stopped = false;
const stop = () => {
  if (stopped) return;
  stopped = true;
  for (const child of children) child.kill("SIGTERM");
  overrides?.remove();
  if (registry) rmSync(registry, { recursive: true, force: true });
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
// A SIGTERM to `npm start` ends npm's shell without passing it on: this process is then handed to
// another parent, and stops with it rather than leave the gateway running.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop();
}, 1000).unref();
for (const child of children) child.on("exit", (code) => {
  stop();
  process.exitCode = code ?? 0;
});

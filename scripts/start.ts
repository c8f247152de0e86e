/**
 * `npm start`: the gateway under `wrangler dev` on 127.0.0.1:8787 with the GPU-backend
 * simulator on 127.0.0.1:7860 as its default backend. Ctrl-C stops both.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { createConnection } from "node:net";

const SIM_PORT = Number(process.env.SIM_PORT ?? 7860);
/** Contract variables taken from the environment, so a deployment-like run needs no file. */
const PASSED_THROUGH = ["TENANTS", "BACKENDS", "ENDPOINTS", "S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_OUTPUT_BUCKET", "PUBLIC_BASE_URL", "WEBHOOK_RETRY_SCHEDULE", "ALLOW_PRIVATE_URLS", "URL_SIGNING_SECRET"];

const portInUse = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.setTimeout(1000);
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("timeout", () => (socket.destroy(), resolve(false)));
    socket.once("error", () => resolve(false));
  });

if (!existsSync(".dev.vars") && !process.env.TENANTS) {
  copyFileSync(".dev.vars.example", ".dev.vars");
  console.log("created .dev.vars from .dev.vars.example");
}

/** A variable as wrangler will see it: the environment first, then .dev.vars. */
function effective(name: string): string {
  if (process.env[name]) return process.env[name] ?? "";
  if (!existsSync(".dev.vars")) return "";
  const line = readFileSync(".dev.vars", "utf8").split("\n").find((l) => l.startsWith(`${name}=`));
  return line?.slice(name.length + 1) ?? "";
}
const effectiveBackends = () => effective("BACKENDS");

if (!effective("URL_SIGNING_SECRET")) {
  console.warn("URL_SIGNING_SECRET is not set: output links are signed with a fixed local key (a deployment refuses to run without one).");
}

const children: ChildProcess[] = [];
// The simulator runs only when the configuration points at it, and only if nothing (someone
// else's simulator, a real A1111) already listens on its port.
const wantsSimulator = new RegExp(`(127\\.0\\.0\\.1|localhost):${SIM_PORT}\\b`).test(effectiveBackends());
if (wantsSimulator && !process.env.EASEL_NO_SIMULATOR && !(await portInUse(SIM_PORT))) {
  children.push(spawn(process.execPath, ["--import", "tsx", "gpu-simulator/main.ts", "--port", String(SIM_PORT)], { stdio: "inherit" }));
}
const vars = PASSED_THROUGH.filter((name) => process.env[name] !== undefined).flatMap((name) => ["--var", `${name}:${process.env[name]}`]);
children.push(
  spawn("npx", ["wrangler", "dev", "--ip", "127.0.0.1", "--port", process.env.PORT ?? "8787", "--show-interactive-dev-session=false", ...vars], {
    stdio: "inherit",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  }),
);

const stop = () => {
  for (const child of children) child.kill("SIGTERM");
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
for (const child of children) child.on("exit", (code) => {
  stop();
  process.exitCode = code ?? 0;
});

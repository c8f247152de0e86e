/** Real processes for end-to-end tests: the GPU simulator and `wrangler dev`, each bounded in time. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { SimConfig, Stats } from "../../../gpu-simulator/state";

const ROOT = resolve(import.meta.dirname, "../../..");

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string, proc: ChildProcess, logs: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}:\n${logs()}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready within ${timeoutMs} ms:\n${logs()}`);
}

/** Spawns in its own process group so stop() ends it and everything it started. */
function spawnGroup(cmd: string, args: string[], env: Record<string, string>): { proc: ChildProcess; logs: () => string } {
  const proc = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString().split("\n"));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  return { proc, logs: () => lines.join("\n") };
}

async function stopGroup(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.pid === undefined) return;
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  try {
    process.kill(-proc.pid, "SIGTERM");
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      if (proc.pid !== undefined) process.kill(-proc.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }, 5000);
  await exited;
  clearTimeout(timer);
}

export interface SimulatorProcess {
  url: string;
  port: number;
  stop(): Promise<void>;
  config(patch: Partial<SimConfig>): Promise<void>;
  stats(): Promise<Stats>;
  /** The A1111 task ids (`force_task_id`) generating now. */
  tasks(): Promise<string[]>;
  reset(): Promise<void>;
}

export async function startSimulatorProcess(opts: { port?: number; env?: Record<string, string> } = {}): Promise<SimulatorProcess> {
  const port = opts.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const { proc, logs } = spawnGroup(process.execPath, ["--import", "tsx", "gpu-simulator/main.ts", "--port", String(port)], opts.env ?? {});
  await waitFor(async () => (await fetch(`${url}/_sim/stats`)).ok, 15_000, "gpu-simulator", proc, logs);
  const post = async (path: string, body?: unknown) => {
    const res = await fetch(url + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) });
    if (!res.ok) throw new Error(`simulator ${path} answered ${res.status}`);
  };
  return {
    url,
    port,
    stop: () => stopGroup(proc),
    config: (patch) => post("/_sim/config", patch),
    stats: async () => (await (await fetch(`${url}/_sim/stats`)).json()) as Stats,
    tasks: async () => ((await (await fetch(`${url}/_sim/tasks`)).json()) as { running: string[] }).running,
    reset: () => post("/_sim/reset"),
  };
}

export interface GatewayProcess {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Stops and starts again on the same state; `vars` replaces the configuration (an operator's change). */
  restart(vars?: Record<string, string>): Promise<void>;
  /** A crash: SIGKILL to the whole process group, no chance to finish anything. */
  kill(): Promise<void>;
  /** Starts it again after a kill, on the same port and state. */
  start(): Promise<void>;
  logs(): string;
  /** The process group of the running `wrangler dev` (its workerd children are in it). */
  pgid(): number | undefined;
  /** Where DevTools connect to this `wrangler dev` (its inspector proxy). */
  inspectorPort: number;
}

/** dotenv with single quotes: JSON values keep their double quotes. */
const dotenv = (vars: Record<string, string>) =>
  Object.entries(vars)
    .map(([k, v]) => `${k}='${v.replace(/'/g, "\\'")}'`)
    .join("\n");

/**
 * `wrangler dev` on loopback with its own persisted state (Durable Objects, R2), so a restart
 * keeps every job, and its own configuration in an env file.
 */
/** `config`: another Worker's wrangler.toml (the bench's floor Worker); the gateway's own by default. */
export async function startGateway(opts: { port?: number; persistDir: string; vars: Record<string, string>; config?: string }): Promise<GatewayProcess> {
  const port = opts.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  // Its folder holds the test tenants' keys and secrets: removed when the gateway stops, written
  // again at each start (a stopped gateway may be started again).
  const envDir = mkdtempSync(join(tmpdir(), "easel-env-"));
  const envFile = join(envDir, "gateway.env");
  let vars = opts.vars;
  // Each gateway needs its own inspector port, or two cannot run at once.
  const inspectorPort = await freePort();
  let current: { proc: ChildProcess; logs: () => string } | undefined;
  const registries: string[] = [];
  const start = async () => {
    // A dev registry of its own for each start: a `wrangler dev` killed hard leaves its entry in the
    // shared one, and its cleanup some seconds later reloaded the one started in its place, cutting
    // the requests in flight (wrangler's 503 "worker restarted mid-request", 1–4 per soak).
    const registry = mkdtempSync(join(tmpdir(), "easel-registry-"));
    registries.push(registry);
    mkdirSync(envDir, { recursive: true });
    writeFileSync(envFile, dotenv({ PUBLIC_BASE_URL: url, ...vars }));
    current = spawnGroup(
      join(ROOT, "node_modules/.bin/wrangler"),
      ["dev", ...(opts.config ? ["--config", opts.config] : []), "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--persist-to", opts.persistDir, "--env-file", envFile, "--log-level", "warn", "--show-interactive-dev-session=false"],
      { CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", WRANGLER_REGISTRY_PATH: registry },
    );
    const started = current;
    await waitFor(async () => (await fetch(`${url}/healthz`)).ok, 60_000, "wrangler dev", started.proc, started.logs);
  };
  const cleanUp = () => {
    for (const dir of [envDir, ...registries.splice(0)]) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await start();
  } catch (err) {
    // Nobody gets a stop() for a gateway that never came up: its folders go now.
    if (current) await stopGroup(current.proc);
    cleanUp();
    throw err;
  }
  return {
    url,
    port,
    stop: async () => {
      if (current) await stopGroup(current.proc);
      cleanUp();
    },
    restart: async (next) => {
      if (current) await stopGroup(current.proc);
      if (next) vars = next;
      await start();
    },
    kill: async () => {
      const proc = current?.proc;
      if (!proc || proc.exitCode !== null || proc.pid === undefined) return;
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      try {
        process.kill(-proc.pid, "SIGKILL");
      } catch {
        return;
      }
      await exited;
    },
    start,
    logs: () => current?.logs() ?? "",
    pgid: () => current?.proc.pid,
    inspectorPort,
  };
}

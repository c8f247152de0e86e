/**
 * The GPU-backend simulator: A1111 and ComfyUI at the root (ComfyUI also under `/api/`), RunPod
 * under `/v2/{endpoint}/`, Cerebrium under `/cerebrium/{name}/predict`, and `/_sim/*` to inject
 * faults and read what happened.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { pngInfo } from "../src/dialects/a1111/infotext";
import { generate, options, type Reply } from "./a1111";
import { readBody } from "./body";
import { listAnswer } from "./a1111-lists";
import { CerebriumSim } from "./cerebrium";
import { ComfyServer, type ComfyAuth } from "./comfyui";
import { s3Object } from "./comfyui-worker";
import { RunPodSim } from "./runpod";
import { extraSingleImage } from "./upscale";
import { emptyStats, SimState, type SimConfig } from "./state";

export interface SimulatorOptions {
  port?: number;
  host?: string;
  config?: Partial<SimConfig>;
  /** A1111 basic auth; none when unset. */
  a1111Auth?: { username: string; password: string };
  runpodApiKey?: string;
  cerebriumApiKey?: string;
  /** ComfyUI: Basic (`username`/`password`) or Bearer (`apiKey`), as a proxy in front of it checks; none when unset. */
  comfyAuth?: ComfyAuth;
}

export interface Simulator {
  url: string;
  port: number;
  state: SimState;
  close(): Promise<void>;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const body = await readBody(req);
  if (!body) return undefined;
  if (!body.length) return {};
  try {
    const v: unknown = JSON.parse(body.toString("utf8"));
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, reply: Reply, sockets: Set<Socket>): void {
  if (reply === "down") {
    res.socket?.destroy();
    return;
  }
  if (reply === "hang") {
    // Never answered; the socket is closed when the simulator stops.
    if (res.socket) sockets.add(res.socket);
    return;
  }
  if (!reply.bodyDelayMs) {
    const text = JSON.stringify(reply.body);
    res.writeHead(reply.status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    return void res.end(text);
  }
  res.writeHead(reply.status, { "content-type": "application/json" });
  res.flushHeaders();
  setTimeout(() => res.end(JSON.stringify(reply.body)), reply.bodyDelayMs);
}

const unauthorized: Reply = { status: 401, body: { detail: "Not authenticated" } };

function keyFrom(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  return h?.replace(/^Bearer\s+/i, "").trim();
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const state = new SimState(opts.config);
  const runpod = new RunPodSim(state);
  const cerebrium = new CerebriumSim(state);
  const comfy = new ComfyServer(state, opts.comfyAuth);
  const hung = new Set<Socket>();

  const a1111Authorized = (req: IncomingMessage): boolean => {
    if (!opts.a1111Auth) return true;
    const expected = `Basic ${Buffer.from(`${opts.a1111Auth.username}:${opts.a1111Auth.password}`).toString("base64")}`;
    return req.headers.authorization === expected;
  };

  async function route(req: IncomingMessage, url: URL): Promise<Reply> {
    const path = url.pathname;
    const method = req.method ?? "GET";
    state.stats.requests[path] = (state.stats.requests[path] ?? 0) + 1;

    if (path.startsWith("/_sim/")) {
      if (path === "/_sim/stats") return { status: 200, body: state.stats };
      if (path === "/_sim/tasks") return { status: 200, body: { running: state.tasks.active() } };
      if (path === "/_sim/config" && method === "POST") {
        const patch = await readJson(req);
        if (!patch) return { status: 400, body: { error: "bad JSON" } };
        state.patch(patch as Partial<SimConfig>);
        return { status: 200, body: state.config };
      }
      if (path === "/_sim/config") return { status: 200, body: state.config };
      if (path === "/_sim/reset" && method === "POST") {
        state.stats = emptyStats();
        return { status: 200, body: { ok: true } };
      }
      return { status: 404, body: { error: "not found" } };
    }

    const runpodMatch = path.match(/^\/v2\/([^/]+)\/(run|runsync|status|stream|cancel|health)(?:\/([^/]+))?$/);
    if (runpodMatch) {
      if (opts.runpodApiKey && keyFrom(req) !== opts.runpodApiKey) return unauthorized;
      const [, , op, id] = runpodMatch;
      if (op === "health") return { status: 200, body: { jobs: {}, workers: { idle: 1, running: state.stats.byKind.runpod.current } } };
      // A RunPod that cannot be reached answers nothing: no status, no cancel, no new job (the jobs it has run on).
      if (state.faults("runpod").down) return "down";
      if (op === "status" && id) return runpod.status(id);
      if (op === "stream" && id) return runpod.stream(id);
      if (op === "cancel" && id) return runpod.cancel(id);
      const body = await readJson(req);
      if (!body) return { status: 400, body: { error: "bad JSON" } };
      const where = { endpoint: runpodMatch[1] ?? "", baseUrl: `http://${req.headers.host ?? "127.0.0.1"}` };
      if (op === "run" && state.takeDrop("runpod")) {
        runpod.run(body, where);
        return "down";
      }
      return op === "runsync" ? runpod.runsync(body, where) : runpod.run(body, where);
    }

    if (/^\/cerebrium\/[^/]+\/predict$/.test(path) && method === "POST") {
      if (opts.cerebriumApiKey && keyFrom(req) !== opts.cerebriumApiKey) return { status: 401, body: { message: "Unauthorized" } };
      const body = await readJson(req);
      if (!body) return { status: 400, body: { message: "bad JSON" } };
      return cerebrium.predict({ body, query: url.searchParams, headers: req.headers });
    }

    if (path.startsWith("/sdapi/v1/") || path === "/internal/progress") {
      if (!a1111Authorized(req)) return unauthorized;
      return a1111Route(req, url, method);
    }
    return { status: 404, body: { detail: "Not Found" } };
  }

  async function a1111Route(req: IncomingMessage, url: URL, method: string): Promise<Reply> {
    const path = url.pathname;
    const name = path.slice("/sdapi/v1/".length);
    if (path === "/internal/progress" && method === "POST") {
      if (state.faults("a1111").nowebui) return { status: 404, body: { detail: "Not Found" } };
      const body = (await readJson(req)) ?? {};
      return { status: 200, body: state.tasks.internal(body.id_task, body.id_live_preview) };
    }
    if (name === "progress" && method === "GET") return { status: 200, body: state.tasks.progress(url.searchParams.get("skip_current_image") === "true") };
    if (name === "interrupt" && method === "POST") {
      state.stats.interrupts++;
      state.tasks.interrupt();
      return { status: 200, body: {} };
    }
    if (name === "skip" && method === "POST") {
      state.stats.skips++;
      state.tasks.skip();
      return { status: 200, body: null };
    }
    if (name === "options") {
      if (method === "GET") return options(state);
      const body = await readJson(req);
      return body ? options(state, body) : { status: 422, body: { detail: [{ msg: "invalid JSON" }] } };
    }
    if (name === "extra-single-image" && method === "POST") {
      const body = await readJson(req);
      if (!body) return { status: 422, body: { detail: [{ loc: ["body"], msg: "invalid JSON", type: "value_error.jsondecode" }] } };
      return extraSingleImage(state, "a1111", body);
    }
    if ((name === "txt2img" || name === "img2img") && method === "POST") {
      const body = await readJson(req);
      if (!body) return { status: 422, body: { detail: [{ loc: ["body"], msg: "invalid JSON", type: "value_error.jsondecode" }] } };
      if (state.takeDrop("a1111")) {
        // Taken: the generation runs on, with nobody left to answer.
        void generate(state, "a1111", name, body);
        return "down";
      }
      return generate(state, "a1111", name, body);
    }
    if (name === "png-info" && method === "POST") {
      const body = await readJson(req);
      if (typeof body?.image !== "string") return { status: 422, body: { detail: [{ loc: ["body", "image"], msg: "field required", type: "value_error.missing" }] } };
      const info = await pngInfo(body.image);
      return info ? { status: 200, body: info } : { status: 500, body: { error: "HTTPException", detail: "Invalid encoded image", body: "", errors: "500: Invalid encoded image" } };
    }
    if ((name === "refresh-checkpoints" || name === "refresh-loras") && method === "POST") return { status: 200, body: null };
    const list = method === "GET" ? listAnswer(name) : undefined;
    return list !== undefined ? { status: 200, body: list } : { status: 404, body: { detail: "Not Found" } };
  }

  /** When each connection last finished an answer (see `staleAfterMs`). */
  const idleSince = new WeakMap<Socket, number>();
  const server = createServer((req, res) => {
    const socket = req.socket;
    const staleAfter = state.faults("a1111").staleAfterMs;
    const idle = idleSince.get(socket);
    if (staleAfter > 0 && idle !== undefined && Date.now() - idle > staleAfter) {
      state.stats.staleDropped++;
      socket.destroy();
      return;
    }
    res.on("finish", () => idleSince.set(socket, Date.now()));
    const url = new URL(req.url ?? "/", "http://simulator");
    const object = url.pathname.startsWith("/_sim/s3/") ? s3Object(decodeURIComponent(url.pathname.slice("/_sim/s3/".length))) : undefined;
    if (object) {
      res.writeHead(200, { "content-type": "image/png", "content-length": object.length });
      return void res.end(object);
    }
    const comfyPath = ComfyServer.path(url.pathname);
    if (comfyPath) {
      state.stats.requests[url.pathname] = (state.stats.requests[url.pathname] ?? 0) + 1;
      comfy.handle(req, res, url, comfyPath).catch((err: unknown) => send(res, { status: 500, body: { error: "SimulatorError", errors: String(err) } }, hung));
      return;
    }
    route(req, url)
      .then((reply) => send(res, reply, hung))
      .catch((err: unknown) => send(res, { status: 500, body: { error: "SimulatorError", errors: String(err) } }, hung));
  });
  server.on("upgrade", (req, socket) => {
    const url = new URL(req.url ?? "/", "http://simulator");
    if (ComfyServer.path(url.pathname) === "/ws") comfy.upgrade(req, socket, url);
    else socket.destroy();
  });
  const sockets = new Set<Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${port}`,
    port,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

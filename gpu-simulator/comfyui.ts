/**
 * ComfyUI's server API (server.py), at the root and under `/api/`: `/prompt`, `/queue`,
 * `/interrupt`, `/history`, `/view`, `/upload/image`, the lists, and the `/ws` socket. ComfyUI has
 * no auth of its own; the optional Basic or Bearer check stands for the proxy people put in front.
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { readBody } from "./body";
import { DIRS, unsafePath, type Dir } from "./comfyui-files";
import { listRoute } from "./comfyui-lists";
import { CHECKPOINTS, UPSCALE_MODELS, type ComfyLists } from "./comfyui-nodes";
import { ComfyQueue } from "./comfyui-queue";
import { validatePrompt, type ComfyError } from "./comfyui-validate";
import type { SimState } from "./state";
import { acceptWebSocket } from "./websocket";

export type ComfyAuth = { username: string; password: string } | { apiKey: string };

const ROUTES = /^\/(prompt|queue|interrupt|history(\/[^/]+)?|view|upload\/image|object_info(\/[^/]+)?|models(\/[^/]+)?|system_stats|embeddings|extensions|features|ws)$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const same = (a: string, b: string) => timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());


const parse = (b: Buffer | undefined): Record<string, unknown> | undefined => {
  try {
    const v: unknown = JSON.parse(b?.toString("utf8") ?? "");
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(body === undefined ? "" : JSON.stringify(body));
};
const promptError = (type: string, message: string, details = message): { error: ComfyError; node_errors: object } => ({ error: { type, message, details, extra_info: {} }, node_errors: {} });

export class ComfyServer {
  readonly queue: ComfyQueue;

  constructor(
    private readonly state: SimState,
    private readonly auth?: ComfyAuth,
  ) {
    this.queue = new ComfyQueue(state);
  }

  /** The ComfyUI path a request names (`/api/x` is `/x`), or undefined when it is not one of ComfyUI's. */
  static path(pathname: string): string | undefined {
    const p = pathname.startsWith("/api/") ? pathname.slice(4) : pathname;
    return ROUTES.test(p) ? p : undefined;
  }

  lists(): ComfyLists {
    return { checkpoints: CHECKPOINTS, upscaleModels: Object.keys(UPSCALE_MODELS), inputFiles: this.queue.files.inputFiles() };
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.auth) return true;
    const given = req.headers.authorization ?? "";
    const expected = "apiKey" in this.auth ? `Bearer ${this.auth.apiKey}` : `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString("base64")}`;
    return same(given, expected);
  }

  /** `GET /ws?clientId=`: a socket for that client id (a new hex id when none is given). */
  upgrade(req: IncomingMessage, socket: Duplex, url: URL): void {
    if (!this.authorized(req)) return void socket.end('HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Basic realm="comfyui"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    const faults = this.state.faults("comfyui");
    if (faults.down || faults.comfySocketDown) return void socket.destroy();
    const ws = acceptWebSocket(req, socket);
    if (!ws) return;
    const sid = url.searchParams.get("clientId") || randomUUID().replace(/-/g, "");
    this.queue.connect(sid, ws);
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL, path: string): Promise<void> {
    const method = req.method ?? "GET";
    if (!this.authorized(req)) {
      res.writeHead(401, { "content-type": "application/json", "www-authenticate": 'Basic realm="comfyui"' });
      return void res.end(JSON.stringify({ error: "Unauthorized" }));
    }
    const faults = this.state.faults("comfyui");
    if (faults.down) return void res.socket?.destroy();
    if (faults.hang) return;
    if (method === "GET") return this.get(res, url, path);
    const body = await readBody(req);
    if (path === "/upload/image") return this.upload(res, req.headers["content-type"] ?? "", body);
    // aiohttp's request.json() reads the body whatever its Content-Type says.
    const data = parse(body);
    if (path === "/prompt") return this.prompt(res, data);
    if (path === "/queue") {
      if (data?.clear === true) this.queue.clear();
      if (Array.isArray(data?.delete)) this.queue.delete(data.delete);
      return json(res, 200, undefined);
    }
    if (path === "/interrupt") {
      this.queue.interrupt(typeof data?.prompt_id === "string" && data.prompt_id ? data.prompt_id : undefined);
      return json(res, 200, undefined);
    }
    if (path === "/history") {
      if (data?.clear === true) this.queue.deleteHistory("all");
      if (Array.isArray(data?.delete)) this.queue.deleteHistory(data.delete);
      return json(res, 200, undefined);
    }
    json(res, 405, { error: "Method Not Allowed" });
  }

  private prompt(res: ServerResponse, data: Record<string, unknown> | undefined): void {
    if (!data) return json(res, 400, promptError("invalid_prompt", "Invalid JSON body"));
    if (!("prompt" in data)) return json(res, 400, promptError("no_prompt", "No prompt provided"));
    const faults = this.state.faults("comfyui");
    // A ComfyUI before v0.3.45 knows no `prompt_id` field: it names every prompt itself.
    const given = faults.comfyOwnPromptIds ? undefined : data.prompt_id;
    if (given !== undefined && (typeof given !== "string" || !UUID.test(given))) return json(res, 400, promptError("invalid_prompt_id", `Invalid prompt_id: ${String(given)}`, "prompt_id must be a lowercase hyphenated UUID"));
    const promptId = typeof given === "string" ? given : randomUUID();
    if (Math.random() < faults.comfyRejectRate) {
      const error = { type: "exception_during_validation", message: "Exception when validating node", details: "simulated validation failure", extra_info: {} };
      return json(res, 400, { error: { type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation", details: `${error.message}: ${error.details}`, extra_info: {} }, node_errors: {} });
    }
    const v = validatePrompt(data.prompt, this.lists(), (name) => this.queue.files.resolve(name) !== undefined);
    if (!v.ok) return json(res, 400, { error: v.error, node_errors: v.nodeErrors });
    const extra = data.extra_data && typeof data.extra_data === "object" && !Array.isArray(data.extra_data) ? { ...(data.extra_data as Record<string, unknown>) } : {};
    if ("client_id" in data) extra.client_id = data.client_id;
    const number = this.queue.put(promptId, v.graph, extra, v.outputs, { number: typeof data.number === "number" ? data.number : undefined, front: data.front === true });
    // Taken and queued, then the connection drops: the prompt runs with nobody told its id.
    if (this.state.takeDrop("comfyui")) return void res.socket?.destroy();
    json(res, 200, { prompt_id: promptId, number, node_errors: v.nodeErrors });
  }

  private get(res: ServerResponse, url: URL, path: string): void {
    const q = url.searchParams;
    if (path === "/prompt") return json(res, 200, this.queue.info());
    if (path === "/queue") return json(res, 200, this.queue.queue());
    if (path === "/history") {
      const max = q.get("max_items");
      const offset = q.get("offset");
      return json(res, 200, this.queue.historyAll(max === null ? undefined : Number(max), offset === null ? -1 : Number(offset)));
    }
    if (path.startsWith("/history/")) return json(res, 200, this.queue.historyOf(decodeURIComponent(path.slice("/history/".length))));
    if (path === "/view") return this.view(res, q);
    if (path === "/ws") return json(res, 400, { error: "Expected a WebSocket upgrade" });
    const list = listRoute(path, this.lists());
    if (list) return json(res, list.status, list.body);
    json(res, 405, { error: "Method Not Allowed" });
  }

  /** `GET /view`: 400 for a name with a leading `/` or `..`, 403 for a subfolder leaving the directory, 404 when missing. */
  private view(res: ServerResponse, q: URLSearchParams): void {
    const raw = q.get("filename");
    if (raw === null) return json(res, 404, undefined);
    const m = /^(.*) \[(input|output|temp)\]$/.exec(raw);
    const filename = m?.[1] ?? raw;
    if (!filename) return json(res, 400, undefined);
    if (filename.startsWith("/") || filename.includes("..")) return json(res, 400, undefined);
    const type = (m?.[2] ?? q.get("type") ?? "output") as Dir;
    if (!DIRS.includes(type)) return json(res, 400, undefined);
    const subfolder = q.get("subfolder") ?? "";
    if (unsafePath(subfolder)) return json(res, 403, undefined);
    const name = filename.split("/").pop() ?? filename;
    const bytes = this.queue.files.get(type, subfolder, name);
    if (!bytes) return json(res, 404, undefined);
    res.writeHead(200, { "content-type": name.endsWith(".png") ? "image/png" : "application/octet-stream", "content-disposition": `filename="${name}"`, "content-length": bytes.length });
    res.end(bytes);
  }

  /** `POST /upload/image`: multipart `image` (+ `overwrite`, `subfolder`, `type`) → `{name, subfolder, type}`. */
  private async upload(res: ServerResponse, contentType: string, body: Buffer | undefined): Promise<void> {
    if (!body) return json(res, 413, undefined);
    let form: FormData;
    try {
      form = await new Response(body, { headers: { "content-type": contentType } }).formData();
    } catch {
      return json(res, 400, undefined);
    }
    const image: unknown = form.get("image");
    if (!(image instanceof File) || !image.name) return json(res, 400, undefined);
    const type = String(form.get("type") ?? "input") as Dir;
    const subfolder = String(form.get("subfolder") ?? "");
    if (!DIRS.includes(type) || unsafePath(subfolder) || unsafePath(image.name) || image.name.includes("/")) return json(res, 400, undefined);
    const overwrite = ["true", "1"].includes(String(form.get("overwrite") ?? ""));
    const name = this.queue.files.upload(type, subfolder, image.name, Buffer.from(await image.arrayBuffer()), overwrite);
    json(res, 200, { name, subfolder, type });
  }
}

import { createHash } from "node:crypto";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    hangingBackendUrl: string;
  }
}

/**
 * A backend whose generations never answer: lets Durable Object tests hold a job in `running`
 * for as long as they need, without racing the real alarm. Interrupts and skips answer at once, as
 * A1111's do; every task is active, its progress rising by a tenth with each question about it (but
 * for an `ending-*` task, over once asked about twice). RunPod
 * `runsync` calls (model listing) answer as a warm (`/v2/warm-*`) or cold (`/v2/cold-*`, still
 * IN_QUEUE) endpoint would, and `GET /_calls?path=` tells how often a path was called. A held
 * endpoint's (`/v2/held-*`) listing answers as a warm one only once `POST /_release?path=` lets it
 * (or after HOLD_MS), with a 500 instead when `&fail=1` (only the oldest or newest held with `&one=`);
 * `GET /_held?path=` counts its calls still unanswered.
 * `GET /_answer?bytes=&chunked=` answers a generation at once (its length declared, or not).
 * `POST /_echo/<name>` tells what body it got (the first call to a `-cut` name is cut instead).
 * Under `/lists-*`, a server answers its lists at once: A1111's `refresh-*` and `sd-models`,
 * ComfyUI's `/models`, its two folders, `/embeddings` and `/object_info` (404 for another folder).
 */
const LISTS: Record<string, unknown> = {
  "/sdapi/v1/refresh-checkpoints": null,
  "/sdapi/v1/refresh-loras": null,
  "/sdapi/v1/sd-models": [{ title: "listed.safetensors [0123456789]", model_name: "listed", hash: "0123456789", sha256: null, filename: "listed.safetensors", config: null }],
  "/models": ["checkpoints", "loras"],
  "/models/checkpoints": ["listed.safetensors"],
  "/models/loras": ["lora.safetensors"],
  "/embeddings": ["embedding"],
  "/object_info": { KSampler: { input: { required: {} }, output: ["LATENT"], name: "KSampler" } },
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const sockets = new Set<import("node:net").Socket>();
  let asked = 0;
  const askedByTask = new Map<string, number>();
  const calls = new Map<string, number>();
  const held = new Map<string, Set<(fail: boolean) => void>>();
  /** Tasks A1111 has completed (`/_complete?task=`): asked about, it says so. */
  const completed = new Set<string>();
  const stored = new Map<string, string>();
  const HOLD_MS = 20_000;
  /** Holds a request at `path` until `/_release` lets it (or HOLD_MS passed): then `answer` answers it, a failure when asked to. */
  const hold = (path: string, res: ServerResponse, answer: (fail: boolean) => void) => {
    const waiting = held.get(path) ?? new Set<(fail: boolean) => void>();
    held.set(path, waiting);
    const release = (fail: boolean) => {
      clearTimeout(timer);
      if (waiting.delete(release)) answer(fail);
    };
    const timer = setTimeout(() => release(false), HOLD_MS);
    res.on("close", () => waiting.delete(release));
    waiting.add(release);
  };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://hang");
    if (url.pathname === "/_calls") return void res.end(String(calls.get(url.searchParams.get("path") ?? "") ?? 0));
    if (url.pathname === "/_held") return void res.end(String(held.get(url.searchParams.get("path") ?? "")?.size ?? 0));
    if (url.pathname === "/_release") {
      // All of the path's held requests, or only its oldest or newest (`one=`).
      const waiting = [...(held.get(url.searchParams.get("path") ?? "") ?? [])];
      const one = url.searchParams.get("one");
      const chosen = one === "oldest" ? waiting.slice(0, 1) : one === "newest" ? waiting.slice(-1) : waiting;
      for (const answer of chosen) answer(url.searchParams.get("fail") === "1");
      return void res.end("{}");
    }
    if (url.pathname === "/_stored") return void res.end(stored.get(url.searchParams.get("path") ?? "") ?? "");
    if (url.pathname === "/_complete") {
      completed.add(url.searchParams.get("task") ?? "");
      return void res.end("{}");
    }
    calls.set(url.pathname, (calls.get(url.pathname) ?? 0) + 1);
    const listed = /^\/lists-[^/]+(\/.*)$/.exec(url.pathname)?.[1];
    if (listed !== undefined) {
      const answer = LISTS[listed];
      if (answer === undefined) res.writeHead(404);
      // A rescan takes A1111 a while (it walks its folders): refreshes asked together meet it under way.
      const delay = listed.startsWith("/sdapi/v1/refresh-") ? 1000 : 0;
      return void setTimeout(() => res.end(JSON.stringify(answer ?? { error: "not found" })), delay);
    }
    if (url.pathname === "/_answer") {
      // A finished generation's answer, one image of `bytes` base64 characters: with its length, or chunked.
      const text = JSON.stringify({ images: ["A".repeat(Number(url.searchParams.get("bytes") ?? 4))] });
      if (url.searchParams.get("chunked") === "1") {
        res.writeHead(200, { "content-type": "application/json" });
        res.write(text.slice(0, 10));
        return void res.end(text.slice(10));
      }
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      return void res.end(text);
    }
    // A request's body as it arrived: its length, its declared length and its SHA-256. The first
    // request to a path ending in `-cut` has its connection cut instead, as a stale kept-alive one is.
    if (req.method === "POST" && url.pathname.startsWith("/_echo/")) {
      if (url.pathname.endsWith("-cut") && calls.get(url.pathname) === 1) return void req.socket.destroy();
      const hash = createHash("sha256");
      let length = 0;
      req.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
      });
      req.on("end", () => res.end(JSON.stringify({ length, content_length: req.headers["content-length"] ?? null, sha256: hash.digest("hex") })));
      return;
    }
    // An S3 store: bucket `flaky` answers each key's first PUT 503, then 200; bucket `gone` answers 404 NoSuchBucket.
    if (req.method === "PUT" && url.pathname.startsWith("/flaky/")) {
      res.writeHead(calls.get(url.pathname) === 1 ? 503 : 200);
      return void res.end();
    }
    // Bucket `held`: an image's PUT is taken at once, a manifest's (`.out`) waits for `/_release`; the body a key got last is at `/_stored`.
    if (req.method === "PUT" && url.pathname.startsWith("/held/")) {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        const take = () => {
          stored.set(url.pathname, body);
          res.end();
        };
        if (!url.pathname.endsWith(".out")) return take();
        hold(url.pathname, res, (fail) => (fail ? res.writeHead(500).end() : take()));
      });
      return;
    }
    if (req.method === "PUT" && url.pathname.startsWith("/gone/")) {
      res.writeHead(404, { "content-type": "application/xml" });
      return void res.end("<Error><Code>NoSuchBucket</Code></Error>");
    }
    if (req.url === "/sdapi/v1/interrupt") res.end("{}");
    if (req.url === "/sdapi/v1/skip") res.end("null");
    if (req.url === "/internal/progress") {
      asked++;
      // Counted per task, so one test's progress does not move with another's jobs.
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        const task = (JSON.parse(body || "{}") as { id_task?: string }).id_task ?? "";
        const n = (askedByTask.get(task) ?? 0) + 1;
        askedByTask.set(task, n);
        // A task named `ending-*` is active when first asked about, and over after.
        if ((task.startsWith("ending-") && n > 1) || completed.has(task)) return void res.end(JSON.stringify({ active: false, queued: false, completed: true, progress: 1, eta: null, live_preview: null, id_live_preview: -1, textinfo: null }));
        res.end(JSON.stringify({ active: true, queued: false, completed: false, progress: Math.min(0.9, n / 10), eta: 3, live_preview: null, id_live_preview: -1, textinfo: null }));
      });
      return;
    }
    if (req.url?.startsWith("/sdapi/v1/progress")) {
      const image = req.url.includes("skip_current_image=false") ? "cHJldmlldw==" : null;
      res.end(JSON.stringify({ progress: 0.5, eta_relative: 3, state: { job: "scripts_img2img", job_count: 1, job_no: 0, job_timestamp: "20260101000000", sampling_step: asked % 20, sampling_steps: 20 }, current_image: image, textinfo: null }));
    }
    const runsync = /^\/v2\/(warm|cold|held)-[^/]+\/runsync$/.exec(url.pathname);
    const warm = () => res.end(JSON.stringify({ id: "sync-1", status: "COMPLETED", output: [{ title: "chilloutmix-Ni.safetensors [7234b76e42]", model_name: "chilloutmix-Ni" }] }));
    if (runsync?.[1] === "warm") return void warm();
    if (runsync?.[1] === "held") return void hold(url.pathname, res, (fail) => (fail ? res.writeHead(500).end("{}") : warm()));
    if (runsync?.[1] === "cold") return void res.end(JSON.stringify({ id: "sync-2", status: "IN_QUEUE" }));
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  project.provide("hangingBackendUrl", `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

import { createServer, type Server } from "node:http";
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
 * A1111's do; every task is active, its progress rising by a tenth with each question about it. RunPod
 * `runsync` calls (model listing) answer as a warm (`/v2/warm-*`) or cold (`/v2/cold-*`, still
 * IN_QUEUE) endpoint would, and `GET /_calls?path=` tells how often a path was called.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const sockets = new Set<import("node:net").Socket>();
  let asked = 0;
  const askedByTask = new Map<string, number>();
  const calls = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://hang");
    if (url.pathname === "/_calls") return void res.end(String(calls.get(url.searchParams.get("path") ?? "") ?? 0));
    calls.set(url.pathname, (calls.get(url.pathname) ?? 0) + 1);
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
        res.end(JSON.stringify({ active: true, queued: false, completed: false, progress: Math.min(0.9, n / 10), eta: 3, live_preview: null, id_live_preview: -1, textinfo: null }));
      });
      return;
    }
    if (req.url?.startsWith("/sdapi/v1/progress")) {
      const image = req.url.includes("skip_current_image=false") ? "cHJldmlldw==" : null;
      res.end(JSON.stringify({ progress: 0.5, eta_relative: 3, state: { job: "scripts_img2img", job_count: 1, job_no: 0, job_timestamp: "20260101000000", sampling_step: asked % 20, sampling_steps: 20 }, current_image: image, textinfo: null }));
    }
    const runsync = /^\/v2\/(warm|cold)-[^/]+\/runsync$/.exec(url.pathname);
    if (runsync?.[1] === "warm") return void res.end(JSON.stringify({ id: "sync-1", status: "COMPLETED", output: [{ title: "chilloutmix-Ni.safetensors [7234b76e42]", model_name: "chilloutmix-Ni" }] }));
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

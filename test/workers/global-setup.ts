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
 * A1111's do; every task is active, its progress rising by a tenth with each question.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const sockets = new Set<import("node:net").Socket>();
  let asked = 0;
  const server: Server = createServer((req, res) => {
    if (req.url === "/sdapi/v1/interrupt") res.end("{}");
    if (req.url === "/sdapi/v1/skip") res.end("null");
    if (req.url === "/internal/progress") {
      asked++;
      res.end(JSON.stringify({ active: true, queued: false, completed: false, progress: Math.min(0.9, asked / 10), eta: 3, live_preview: null, id_live_preview: -1, textinfo: null }));
    }
    if (req.url?.startsWith("/sdapi/v1/progress")) {
      const image = req.url.includes("skip_current_image=false") ? "cHJldmlldw==" : null;
      res.end(JSON.stringify({ progress: 0.5, eta_relative: 3, state: { job: "scripts_img2img", job_count: 1, job_no: 0, job_timestamp: "20260101000000", sampling_step: asked % 20, sampling_steps: 20 }, current_image: image, textinfo: null }));
    }
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

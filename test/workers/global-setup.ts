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
 * for as long as they need, without racing the real alarm. Interrupts answer at once, as A1111's do.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const sockets = new Set<import("node:net").Socket>();
  const server: Server = createServer((req, res) => {
    if (req.url === "/sdapi/v1/interrupt") res.end("{}");
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

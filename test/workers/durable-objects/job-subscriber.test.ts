/** A job's events handed to its subscriber as they are written: here the ComfyUI sockets of a tenant. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ComfySocket } from "../../../durable-objects/comfy-socket";
import { CLIENT_ID_HEADER } from "../../../src/contracts/prompts";
import { jobStub } from "../../../src/jobs/client";
import { mintRunId } from "../../../src/jobs/run-id";
import { hangingJobInput } from "../support/jobs";

const objects = env.JOB_SUBSCRIBERS as unknown as DurableObjectNamespace<ComfySocket>;

type Message = { type: string; data: Record<string, unknown> };

async function until(got: Message[], match: (m: Message) => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!got.some(match)) {
    if (Date.now() > end) throw new Error(`no matching message; got ${JSON.stringify(got.map((m) => m.type))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("job subscriber", () => {
  it("hands the subscriber each event of the job in order: start, progress, the end", { timeout: 30_000 }, async () => {
    const id = await mintRunId(env);
    const name = "comfyui:subscriber-test";
    const o = objects.get(objects.idFromName(name));
    await o.reserve({ prompt_id: "p-sub", run_id: id, client_id: "watcher" });
    const res = await o.fetch(new Request("http://o/ws", { headers: { upgrade: "websocket", [CLIENT_ID_HEADER]: "watcher" } }));
    const ws = res.webSocket;
    if (!ws) throw new Error("no socket");
    const got: Message[] = [];
    ws.addEventListener("message", (e) => got.push(JSON.parse(String(e.data)) as Message));
    ws.accept();

    // On the backend that never answers: it runs, reports rising progress, and ends when canceled.
    await jobStub(env, id).create(hangingJobInput(id, { dialect: "comfyui", subscriber: name, dialect_data: { prompt_id: "p-sub" } }));
    await until(got, (m) => m.type === "progress");
    await jobStub(env, id).cancel("acme");
    await until(got, (m) => m.type === "executing" && m.data.node === null);

    const mine = got.filter((m) => m.type !== "status");
    expect(mine.slice(0, 2).map((m) => m.type)).toEqual(["execution_start", "execution_cached"]);
    expect(mine.slice(-2).map((m) => m.type)).toEqual(["execution_interrupted", "executing"]);
    expect(mine.every((m) => m.data.prompt_id === "p-sub")).toBe(true);
    expect((await o.activePage({ after: 0, limit: 10 })).prompts).toEqual([]);
    ws.close();
  });
});

/** ComfyUI test helpers: the example graph made small, and the calls tests make to a ComfyUI server. */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll } from "vitest";
import { startSimulatorProcess, type SimulatorProcess } from "./processes";
import type { SocketMessage } from "./websocket";

export type Graph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;
export type History = Record<string, { prompt: unknown[]; outputs: Record<string, { images: { filename: string; subfolder: string; type: string }[] }>; status: { status_str: string; completed: boolean; messages: [string, Record<string, unknown>][] } }>;

const EXAMPLE = JSON.parse(readFileSync(new URL("../../../examples/comfyui-txt2img.json", import.meta.url), "utf8")) as Graph;

/** The example txt2img graph at 64x48 and 3 steps, saving under `prefix` (so file names do not depend on other tests). */
export function txt2img(prefix: string, edit: (g: Graph) => void = () => undefined): Graph {
  const g = structuredClone(EXAMPLE);
  Object.assign((g["5"] as Graph[string]).inputs, { width: 64, height: 48 });
  Object.assign((g["3"] as Graph[string]).inputs, { steps: 3 });
  (g["9"] as Graph[string]).inputs.filename_prefix = prefix;
  edit(g);
  return g;
}

export const forPrompt = (id: string) => (m: SocketMessage) => m.data.prompt_id === id;

export function comfyCalls(base: string) {
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) => fetch(base + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const history = async (id: string) => (await (await fetch(`${base}/api/history/${id}`)).json()) as History;
  return {
    post,
    history,
    queuePrompt: async (body: Record<string, unknown>) => (await (await post("/prompt", body)).json()) as { prompt_id: string; number: number; node_errors: object },
    /** The prompt's history entry once it has one (bounded wait). */
    finished: async (id: string): Promise<History[string] | undefined> => {
      for (let i = 0; i < 100; i++) {
        const entry = (await history(id))[id];
        if (entry) return entry;
        await new Promise((r) => setTimeout(r, 50));
      }
      return undefined;
    },
  };
}

/**
 * A simulator process for the file's tests (zero latency), started before them and stopped after:
 * the object's fields are filled once it runs.
 */
export function useComfySimulator(): { sim: SimulatorProcess; ws: string; api: ReturnType<typeof comfyCalls> } {
  const env = {} as { sim: SimulatorProcess; ws: string; api: ReturnType<typeof comfyCalls> };
  beforeAll(async () => {
    env.sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 0 }) } });
    env.ws = env.sim.url.replace("http", "ws");
    env.api = comfyCalls(env.sim.url);
  });
  afterAll(async () => {
    await env.sim?.stop();
  });
  return env;
}

/**
 * `npm run bench -- comfyui`: a workflow job through the gateway against the same graph sent
 * straight to a ComfyUI server (the simulator, zero latency), side by side in one run; then a
 * gateway restart while a prompt runs, counting the prompts the server was sent.
 *
 * Direct: open the socket, `POST /prompt`, wait for `executing` with `node: null`, read the history
 * and `/view` the image. Through the gateway: `POST /v1/jobs` with a webhook, until the signed
 * webhook is received (the image already in R2).
 */
import { readFileSync } from "node:fs";
import type { GatewayProcess } from "../test/e2e/support/processes";
import { startSimulatorProcess } from "../test/e2e/support/processes";
import { startReceiver } from "../test/e2e/support/receiver";
import { openSocket } from "../test/e2e/support/websocket";

type Tools = {
  auth: Record<string, string>;
  secret: string;
  withGateway: <T>(vars: Record<string, string>, fn: (url: string, gw: GatewayProcess) => Promise<T>) => Promise<T>;
  report: (name: string, value: string) => void;
};
type Graph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

const ROUNDS = 40;
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

/** The README's example graph, at 64×64 and one step, its prompt made unique per round. */
function graph(text: string): Graph {
  const g = JSON.parse(readFileSync(new URL("../examples/comfyui-txt2img.json", import.meta.url), "utf8")) as Graph;
  for (const node of Object.values(g)) {
    if (node.class_type === "EmptyLatentImage") Object.assign(node.inputs, { width: 64, height: 64 });
    if (node.class_type === "KSampler") node.inputs.steps = 1;
  }
  const positive = g["6"];
  if (positive) positive.inputs.text = text;
  return g;
}

/** One prompt straight at the server, as a ComfyUI script does it: socket, prompt, end, history, image. */
async function direct(sim: string, text: string): Promise<number> {
  const clientId = crypto.randomUUID();
  const t = performance.now();
  const ws = await openSocket(`${sim.replace("http", "ws")}/ws?clientId=${clientId}`);
  const res = await fetch(`${sim}/prompt`, { method: "POST", body: JSON.stringify({ prompt: graph(text), client_id: clientId }) });
  const { prompt_id } = (await res.json()) as { prompt_id: string };
  await ws.waitFor((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === prompt_id, 30_000);
  ws.close();
  // The end is on the socket before the history holds it (as ComfyUI does): read it as a client must.
  let image: { filename: string; subfolder: string; type: string } | undefined;
  for (let i = 0; i < 200 && !image; i++) {
    const h = (await (await fetch(`${sim}/history/${prompt_id}`)).json()) as Record<string, { outputs: Record<string, { images?: { filename: string; subfolder: string; type: string }[] }> }>;
    image = Object.values(h[prompt_id]?.outputs ?? {}).flatMap((o) => o.images ?? [])[0];
    if (!image) await sleep(2);
  }
  if (!image) throw new Error("no image in the history");
  await (await fetch(`${sim}/view?${new URLSearchParams(image)}`)).arrayBuffer();
  return performance.now() - t;
}

export async function comfyui(t: Tools): Promise<void> {
  const sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 0 }) } });
  const receiver = await startReceiver({ secrets: [t.secret] });
  try {
    const backends = JSON.stringify([{ name: "comfy", kind: "comfyui", url: sim.url, max_concurrency: 1, timeout_s: 120 }]);
    await t.withGateway({ BACKENDS: backends }, async (base, gw) => {
      const submit = async (text: string, webhook: string): Promise<string> => {
        const res = await fetch(`${base}/v1/jobs`, { method: "POST", headers: t.auth, body: JSON.stringify({ type: "workflow", workflow: graph(text), webhook }) });
        if (res.status !== 202) throw new Error(`workflow submit answered ${res.status}: ${await res.text()}`);
        return ((await res.json()) as { id: string }).id;
      };
      const viaGateway = async (text: string): Promise<number> => {
        const start = Date.now();
        const id = await submit(text, `${receiver.url}/comfy`);
        const hit = await receiver.waitFor((d) => (d.json as { data?: { id?: string } }).data?.id === id, 30_000);
        return hit.receivedAt - start;
      };
      // Warm-up: compiles every path and lists the server's models once.
      for (let i = 0; i < 5; i++) {
        await direct(sim.url, `warm ${i}`);
        await viaGateway(`warm ${i}`);
      }
      const directMs: number[] = [];
      const gatewayMs: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        directMs.push(await direct(sim.url, `direct ${i}`));
        gatewayMs.push(await viaGateway(`gateway ${i}`));
      }
      t.report("workflow: direct ComfyUI call p50 (socket, prompt, end, history, /view)", `${p50(directMs).toFixed(1)} ms`);
      t.report("workflow: submit → signed webhook through the gateway p50", `${p50(gatewayMs).toFixed(1)} ms`);
      t.report("workflow: the gateway's overhead, p50 difference", `+${(p50(gatewayMs) - p50(directMs)).toFixed(1)} ms`);

      // A hard restart while a prompt runs: the job re-attaches by its prompt_id.
      await sim.config({ msPerImage: 4000 });
      const before = await sim.stats();
      const start = Date.now();
      const id = await submit("restart [tag:restart-bench]", `${receiver.url}/restart`);
      for (let i = 0; i < 300 && (await sim.stats()).current < 1; i++) await sleep(50);
      await gw.kill();
      await gw.start();
      const hit = await receiver.waitFor((d) => (d.json as { data?: { id?: string } }).data?.id === id, 120_000);
      const after = await sim.stats();
      const queued = Object.entries(after.byPrompt).filter(([p, n]) => n !== (before.byPrompt[p] ?? 0));
      const sends = queued.reduce((sum, [p, n]) => sum + n - (before.byPrompt[p] ?? 0), 0);
      const status = (hit.json as { data?: { status?: string } }).data?.status;
      t.report("workflow: hard restart mid-prompt (4 s generation): prompts sent / runs", `${sends} sent for ${queued.length} prompt(s), ${after.byTag["restart-bench"] ?? 0} run(s); job ${status} ${((hit.receivedAt - start) / 1000).toFixed(1)} s after submit`);
      await sim.config({ msPerImage: 0 });
    });
  } finally {
    await receiver.close();
    await sim.stop();
  }
}

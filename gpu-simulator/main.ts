/**
 * `npm run simulator` (or `node --import tsx gpu-simulator/main.ts --port 7860`): the GPU-backend
 * simulator as a process. Faults from SIM_CONFIG (JSON); credentials from SIM_A1111_USERNAME,
 * SIM_A1111_PASSWORD, SIM_RUNPOD_API_KEY, SIM_CEREBRIUM_API_KEY, SIM_COMFYUI_USERNAME and
 * SIM_COMFYUI_PASSWORD (Basic) or SIM_COMFYUI_API_KEY (Bearer) (no auth when unset).
 */
import { parseArgs } from "node:util";
import { startSimulator } from "./server";
import type { SimConfig } from "./state";

const { values } = parseArgs({ options: { port: { type: "string" }, host: { type: "string" } } });
const env = process.env;
const sim = await startSimulator({
  port: Number(values.port ?? env.SIM_PORT ?? 7860),
  host: values.host ?? "127.0.0.1",
  config: env.SIM_CONFIG ? (JSON.parse(env.SIM_CONFIG) as Partial<SimConfig>) : {},
  a1111Auth: env.SIM_A1111_USERNAME || env.SIM_A1111_PASSWORD ? { username: env.SIM_A1111_USERNAME ?? "", password: env.SIM_A1111_PASSWORD ?? "" } : undefined,
  runpodApiKey: env.SIM_RUNPOD_API_KEY,
  cerebriumApiKey: env.SIM_CEREBRIUM_API_KEY,
  comfyAuth: env.SIM_COMFYUI_API_KEY
    ? { apiKey: env.SIM_COMFYUI_API_KEY }
    : env.SIM_COMFYUI_USERNAME || env.SIM_COMFYUI_PASSWORD
      ? { username: env.SIM_COMFYUI_USERNAME ?? "", password: env.SIM_COMFYUI_PASSWORD ?? "" }
      : undefined,
});
console.log(`gpu-simulator listening on ${sim.url}`);

const stop = () => void sim.close().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

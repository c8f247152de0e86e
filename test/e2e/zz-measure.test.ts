import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "vitest";
import { startGateway, startSimulatorProcess } from "/work/wt-11/test/e2e/support/processes";

it("measures progress reading", async () => {
  const sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 10000 }) } });
  const gw = await startGateway({ persistDir: mkdtempSync(join(tmpdir(), "m11-")), vars: { TENANTS: JSON.stringify({ t: { api_keys: ["k"], webhook_secrets: [] } }), BACKENDS: JSON.stringify([{ name: "a", kind: "a1111", url: sim.url }]), URL_SIGNING_SECRET: "x", ALLOW_PRIVATE_URLS: "true" } });
  const auth = { authorization: `Basic ${Buffer.from("u:k").toString("base64")}`, "content-type": "application/json" };
  const body = JSON.stringify({ prompt: "x", width: 64, height: 64, steps: 20 });
  // Warm-up job (compiles, caches models)
  await sim.config({ msPerImage: 20 });
  await fetch(`${gw.url}/sdapi/v1/txt2img`, { method: "POST", headers: auth, body });
  // Baseline end-to-end with short jobs
  const t = async () => { const s = performance.now(); await fetch(`${gw.url}/sdapi/v1/txt2img`, { method: "POST", headers: auth, body }); return performance.now() - s; };
  const base: number[] = []; for (let i = 0; i < 60; i++) base.push(await t());
  base.sort((a, b) => a - b);
  console.log("short job e2e p50 ms", base[30]);
  await gw.stop(); await sim.stop();
}, 120000);

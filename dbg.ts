import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway, startSimulatorProcess } from "/work/main/test/e2e/support/processes";
const sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 300 }) } });
const gw = await startGateway({ persistDir: mkdtempSync(join(tmpdir(), "dbg-")), vars: { TENANTS: JSON.stringify({ a: { api_keys: ["k"], webhook_secrets: [] }, b: { api_keys: ["k2"], webhook_secrets: [] } }), BACKENDS: JSON.stringify([{ name: "single", kind: "a1111", url: sim.url, max_concurrency: 1 }]), ALLOW_PRIVATE_URLS: "true" } });
const ids: [string, string][] = [];
await Promise.all(Array.from({ length: 6 }, async (_, i) => {
  const key = i % 2 ? "k" : "k2";
  const res = await fetch(gw.url + "/v1/jobs", { method: "POST", headers: { authorization: "Bearer " + key, "content-type": "application/json" }, body: JSON.stringify({ type: "txt2img", prompt: "x", width: 64, height: 64, seed: i }) });
  ids.push([((await res.json()) as { id: string }).id, key]);
}));
await new Promise((r) => setTimeout(r, 8000));
for (const [id, key] of ids) {
  const ev = (await (await fetch(`${gw.url}/v1/jobs/${id}/events`, { headers: { authorization: "Bearer " + key } })).json()) as { data: { type: string; at: string; data: unknown }[] };
  console.log(id, key, ev.data.map((e) => `${e.at.slice(17, 23)} ${e.type} ${JSON.stringify(e.data)}`).join(" | "));
}
console.log((await sim.stats()).byKind.a1111);
console.log(gw.logs().split("\n").filter((l) => !l.includes("cf") && !l.includes("getaddrinfo") && !l.includes("GetAddrInfo")).join("\n"));
await gw.stop(); await sim.stop();

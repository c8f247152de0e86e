/**
 * A backend's completion callback sent chunked (no Content-Length), larger than what goes to the job
 * object inline: staged into R2 part by part (src/storage/stage-body.ts), and the job gets every
 * image byte for byte.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, pngSize, waitForJob, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;

beforeAll(async () => {
  // Noise PNGs: one 2048² image is ~12 MB, so its callback is ~16 MB of base64, past the 8 MiB inline limit.
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 0, incompressible: true, runpod: { chunkedWebhooks: true, statusAfterWebhook: true } }) } });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-callbacks-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ acme: { api_keys: ["sk_acme"] } }),
      BACKENDS: JSON.stringify([{ name: "rp", kind: "runpod", url: `${sim.url}/v2/e2e` }]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("backend callbacks", () => {
  it("takes a large callback sent without a Content-Length and stores its images whole", async () => {
    const client = api(gw.url, "sk_acme");
    const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "noise", width: 2048, height: 2048, steps: 1, samples: 2 });
    expect(res.status).toBe(202);
    const job = await waitForJob(client, ((await res.json()) as JobView).id, 90_000);
    expect(job.status).toBe("succeeded");
    // The callback itself settled the job: the simulator's /status hides the end until the callback is
    // answered, so a poll under load cannot settle it first (that callback would have been a 404).
    expect((await sim.stats()).webhooksOk).toBe(1);
    expect(job.output).toHaveLength(2);
    for (const out of job.output) {
      const bytes = new Uint8Array(await (await fetch(out.url)).arrayBuffer());
      expect(bytes.byteLength).toBeGreaterThan(8 * 1024 * 1024);
      expect(pngSize(bytes)).toEqual({ width: 2048, height: 2048 });
    }
  });
});

/**
 * The canonical `upscale` job and per-job `timeout_s`, end to end: a real gateway, the simulator
 * as an A1111 (upscales by default) and as a RunPod A1111 worker that opted in.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { decodePng } from "../../gpu-simulator/upscale";
import { api, waitForJob, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
let client: ReturnType<typeof api>;

/** Red in the top-left quarter, blue elsewhere: an enlargement keeps that layout. */
const SOURCE = Buffer.from(encodePng(16, 8, (x, y) => (x < 8 && y < 4 ? [255, 0, 0] : [0, 0, 255]))).toString("base64");

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20, hang: false }) } });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-upscale-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ acme: { api_keys: ["sk_acme"], webhook_secrets: [] } }),
      BACKENDS: JSON.stringify([
        { name: "a1111", kind: "a1111", url: sim.url, types: ["txt2img", "upscale"] },
        { name: "runpod", kind: "runpod", url: `${sim.url}/v2/worker`, types: ["upscale"] },
        { name: "cerebrium", kind: "cerebrium", url: `${sim.url}/cerebrium/sd/predict` },
      ]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "e2e",
    },
  });
  client = api(gw.url, "sk_acme");
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function output(job: JobView) {
  const out = job.output[0];
  if (!out) throw new Error(`no output: ${JSON.stringify(job)}`);
  const png = decodePng(Buffer.from(await (await fetch(out.url)).arrayBuffer()));
  if (!png) throw new Error("not a PNG");
  return { out, png };
}

describe("type upscale", () => {
  for (const backend of ["a1111", "runpod"]) {
    it(`enlarges the image by scale on ${backend}: one output, the input's pixels at 2.5x, seed null`, async () => {
      const res = await client.post("/v1/jobs", { type: "upscale", image: SOURCE, scale: 2.5, upscaler: "R-ESRGAN 4x+", backend });
      expect(res.status).toBe(202);
      const done = await waitForJob(client, ((await res.json()) as JobView).id);
      expect(done).toMatchObject({ status: "succeeded", type: "upscale", backend, seed: null });
      const { out, png } = await output(done);
      expect(out).toMatchObject({ width: 40, height: 20, seed: null, content_type: "image/png" });
      expect([png.width, png.height]).toEqual([40, 20]);
      expect(png.pixel(0, 0)).toEqual([255, 0, 0]);
      expect(png.pixel(39, 19)).toEqual([0, 0, 255]);
    });
  }

  it("enlarges to width x height", async () => {
    const res = await client.post("/v1/jobs", { type: "upscale", image: SOURCE, width: 256, height: 128 });
    const done = await waitForJob(client, ((await res.json()) as JobView).id);
    expect(done.status).toBe("succeeded");
    expect(done.backend).toBe("a1111");
    expect((await output(done)).out).toMatchObject({ width: 256, height: 128 });
  });

  it("refuses a result over 4096 px a side with a 422 naming scale or width, before any backend runs", async () => {
    const big = Buffer.from(encodePng(2048, 8, () => [1, 2, 3])).toString("base64");
    const byScale = await client.post("/v1/jobs", { type: "upscale", image: big, scale: 2.5 });
    expect(byScale.status).toBe(422);
    expect(((await byScale.json()) as { error: { details: { path: string }[] } }).error.details[0]?.path).toBe("scale");
    const bySize = await client.post("/v1/jobs", { type: "upscale", image: SOURCE, width: 4104, height: 64 });
    expect(bySize.status).toBe(422);
    expect(((await bySize.json()) as { error: { details: { path: string }[] } }).error.details.map((d) => d.path)).toContain("width");
  });

  it("refuses what an upscale cannot be: no image, scale with a size, scale out of 1-4, scale on a txt2img", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ type: "upscale", scale: 2 }, "image"],
      [{ type: "upscale", image: SOURCE, scale: 2, width: 64, height: 64 }, "scale"],
      [{ type: "upscale", image: SOURCE, scale: 5 }, "scale"],
      [{ type: "txt2img", prompt: "x", scale: 2 }, "scale"],
      [{ type: "txt2img", prompt: "x", width: 4096 }, "width"],
    ];
    for (const [body, path] of cases) {
      const res = await client.post("/v1/jobs", body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(((await res.json()) as { error: { details: { path: string }[] } }).error.details.map((d) => d.path)).toContain(path);
    }
  });

  it("never runs on a backend that cannot upscale: pinned to cerebrium, it is a 422", async () => {
    const res = await client.post("/v1/jobs", { type: "upscale", image: SOURCE, scale: 2, backend: "cerebrium" });
    expect(res.status).toBe(422);
  });
});

describe("timeout_s", () => {
  it("fails a job not ended within its timeout_s with code timeout, counted from submission", async () => {
    await sim.config({ a1111: { hang: true } });
    try {
      const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "slow", width: 64, height: 64, timeout_s: 10, backend: "a1111" });
      expect(res.status).toBe(202);
      const queued = (await res.json()) as JobView;
      const done = await waitForJob(client, queued.id, 25_000);
      expect(done.status).toBe("failed");
      expect(done.error?.code).toBe("timeout");
      const took = Date.parse(done.completed_at ?? "") - Date.parse(queued.created_at);
      expect(took).toBeGreaterThanOrEqual(10_000);
      expect(took).toBeLessThan(14_000);
    } finally {
      await sim.config({ a1111: { hang: false } });
    }
  });

  it("takes 10 to 3600 seconds", async () => {
    for (const timeout_s of [9, 3601, 60.5]) {
      const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "x", timeout_s });
      expect(res.status).toBe(422);
    }
  });
});

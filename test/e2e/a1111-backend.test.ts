/**
 * An A1111 backend that lists no `models` (it serves any model): the model a job names reaches
 * A1111 under A1111's own title when A1111 lists it. A1111 drops an override it has no exact alias
 * for and generates with the loaded checkpoint, so a name in another spelling must not go out as asked.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, waitForJob, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess } from "./support/processes";

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let dir: string;
let client: ReturnType<typeof api>;

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 10 }) } });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-a1111-backend-"));
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({ acme: { api_keys: ["sk_acme"], webhook_secrets: [] } }),
      BACKENDS: JSON.stringify([{ name: "any", kind: "a1111", url: sim.url }]),
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

const run = async (model: string): Promise<JobView> => {
  const res = await client.post("/v1/jobs", { type: "txt2img", prompt: "a harbour", width: 64, height: 64, steps: 2, model });
  expect(res.status).toBe(202);
  return waitForJob(client, ((await res.json()) as JobView).id);
};

/** The model named in the PNG's own parameters: what A1111 generated with. */
async function generatedWith(job: JobView): Promise<string | undefined> {
  const bytes = Buffer.from(await (await fetch(job.output[0]?.url ?? "")).arrayBuffer());
  return /Model: ([^,\n]+)/.exec(bytes.toString("latin1"))?.[1];
}

describe("an A1111 backend without a models list", () => {
  it("runs a model named in another spelling (case, extension, hash) with that model, as A1111 titles it", async () => {
    for (const name of ["CHILLOUTMIX-NI", "chilloutmix-Ni.ckpt", "chilloutmix-ni.safetensors [7234b76e42]"]) {
      const job = await run(name);
      expect(job.status).toBe("succeeded");
      // A1111's loaded checkpoint is v1-5: a name sent as asked would have generated with it.
      expect(await generatedWith(job)).toBe("chilloutmix-Ni");
    }
  });

  it("sends a model it does not list as asked: a backend without models serves any model", async () => {
    expect((await run("a-model-it-does-not-list")).status).toBe("succeeded");
  });
});

describe("an A1111 whose answer is nested too deep to read", () => {
  it("fails the job as an unreadable answer, not as a backend that cannot be reached: its circuit stays closed", async () => {
    const deep = `${"[".repeat(20_000)}1${"]".repeat(20_000)}`;
    const server = createServer((req, res) => {
      req.resume();
      res.setHeader("content-type", "application/json");
      res.end(req.url?.startsWith("/sdapi/v1/sd-models") ? "[]" : `{"images": [], "parameters": ${deep}, "info": "{}"}`);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const dir2 = mkdtempSync(join(tmpdir(), "easel-e2e-a1111-deep-"));
    const gw2 = await startGateway({
      persistDir: dir2,
      vars: { TENANTS: JSON.stringify({ acme: { api_keys: ["sk_acme"], webhook_secrets: [] } }), BACKENDS: JSON.stringify([{ name: "deep", kind: "a1111", url }]), ALLOW_PRIVATE_URLS: "true", URL_SIGNING_SECRET: "e2e" },
    });
    try {
      const deepClient = api(gw2.url, "sk_acme");
      for (let i = 0; i < 3; i++) {
        const res = await deepClient.post("/v1/jobs", { type: "txt2img", prompt: "x", width: 64, height: 64, steps: 2 });
        const job = await waitForJob(deepClient, ((await res.json()) as JobView).id);
        expect(job).toMatchObject({ status: "failed", error: { code: "backend_failed", message: "the backend's answer could not be read" } });
      }
      const backends = (await (await deepClient.get("/v1/backends")).json()) as { data: { name: string; circuit: string }[] };
      expect(backends.data.find((b) => b.name === "deep")?.circuit).toBe("closed");
    } finally {
      await gw2.stop();
      server.close();
      rmSync(dir2, { recursive: true, force: true });
    }
  });
});

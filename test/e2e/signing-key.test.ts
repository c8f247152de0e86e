/** URL_SIGNING_SECRET as an operator meets it: rotated across restarts, and missing. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, pngSize, waitForJob, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess, type GatewayProcess, type SimulatorProcess } from "./support/processes";

const KEY = "sk_sign_1";
let sim: SimulatorProcess;
const dirs: string[] = [];
const gateways: GatewayProcess[] = [];

const vars = (secret: string | undefined) => ({
  TENANTS: JSON.stringify({ signer: { api_keys: [KEY] } }),
  BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url, max_concurrency: 2 }]),
  ALLOW_PRIVATE_URLS: "true",
  ...(secret === undefined ? {} : { URL_SIGNING_SECRET: secret }),
});

async function gateway(secret: string | undefined): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), "easel-e2e-signing-"));
  dirs.push(dir);
  const gw = await startGateway({ persistDir: dir, vars: vars(secret) });
  gateways.push(gw);
  return gw;
}

beforeAll(async () => {
  sim = await startSimulatorProcess();
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await sim?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

type ErrorBody = { error: { code: string; message: string } };

describe("URL_SIGNING_SECRET", () => {
  it("rotates: links and jobs issued under the old key keep working while it is listed after the new one", async () => {
    const gw = await gateway("key-a-0123456789");
    const client = api(gw.url, KEY);
    const submitted = (await (await client.post("/v1/jobs", { type: "txt2img", prompt: "before rotation", width: 64, height: 64 })).json()) as JobView;
    const done = await waitForJob(client, submitted.id);
    expect(done.status).toBe("succeeded");
    const link = done.output[0]?.url ?? "";
    expect((await fetch(link)).status).toBe(200);

    await gw.restart(vars("key-b-9876543210,key-a-0123456789"));
    const job = await client.get(`/v1/jobs/${submitted.id}`);
    expect(job.status).toBe(200);
    expect(((await job.json()) as JobView).status).toBe("succeeded");
    const image = await fetch(link);
    expect(image.status).toBe(200);
    expect(pngSize(new Uint8Array(await image.arrayBuffer()))).toEqual({ width: 64, height: 64 });
    // New work is signed with the new key, the first listed.
    const fresh = (await (await client.post("/v1/jobs", { type: "txt2img", prompt: "after rotation", width: 64, height: 64 })).json()) as JobView;
    const freshLink = (await waitForJob(client, fresh.id)).output[0]?.url ?? "";
    expect((await fetch(freshLink)).status).toBe(200);

    // The old key dropped: what it signed is void; what the new key signed is not.
    await gw.restart(vars("key-b-9876543210"));
    expect((await fetch(link)).status).toBe(403);
    expect((await client.get(`/v1/jobs/${submitted.id}`)).status).toBe(404);
    expect((await fetch(freshLink)).status).toBe(200);
    expect((await client.get(`/v1/jobs/${fresh.id}`)).status).toBe(200);
  });

  it("has no built-in default: without one, submitting and following a link are a 500 naming it, never its value", async () => {
    const gw = await gateway(undefined);
    const client = api(gw.url, KEY);
    const answers = [
      await client.post("/v1/jobs", { type: "txt2img", prompt: "unsigned", width: 64, height: 64 }),
      await fetch(`${gw.url}/v1/outputs/b3V0cHV0cy9ydW5feC8wLnBuZw.png?expires=9999999999&sig=AAAA`),
      await client.get("/v1/jobs/run_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    ];
    for (const res of answers) {
      expect(res.status).toBe(500);
      const body = (await res.json()) as ErrorBody;
      expect(body.error.code).toBe("config_invalid");
      expect(body.error.message).toMatch(/^URL_SIGNING_SECRET is invalid: not set/);
    }
  });
});

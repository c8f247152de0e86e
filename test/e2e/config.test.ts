/** Operator configuration as the operator meets its mistakes: each a 500 naming the variable, never its content, and nothing sent meanwhile. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, waitForJob, type JobView } from "./support/client";
import { startGateway, startSimulatorProcess, type GatewayProcess, type SimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";

const KEY = "sk_config_1";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
let sim: SimulatorProcess;
let gw: GatewayProcess;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let dir: string;

const vars = (over: Record<string, string> = {}) => ({
  TENANTS: JSON.stringify({ operator: { api_keys: [KEY], webhook_secrets: [SECRET] } }),
  BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url }]),
  ALLOW_PRIVATE_URLS: "true",
  URL_SIGNING_SECRET: "e2e",
  ...over,
});

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 5 }) } });
  receiver = await startReceiver({ secrets: [SECRET], answer: () => ({ status: 500 }) });
  dir = mkdtempSync(join(tmpdir(), "easel-e2e-config-"));
  gw = await startGateway({ persistDir: dir, vars: vars() });
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await receiver?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type ErrorBody = { error: { code: string; message: string } };

async function expectConfigError(res: Response, variable: string): Promise<void> {
  expect(res.status).toBe(500);
  const body = (await res.json()) as ErrorBody;
  expect(body.error.code).toBe("config_invalid");
  expect(body.error.message).toMatch(new RegExp(`^${variable} is invalid: `));
}

describe("a configuration error", () => {
  it("is a 500 naming the variable, from the Worker or from a job's object, and refuses a job rather than fail its webhooks later", async () => {
    const client = () => api(gw.url, KEY);
    const job = (await (await client().post("/v1/jobs", { type: "txt2img", prompt: "configured", width: 64, height: 64 })).json()) as JobView;
    expect((await waitForJob(client(), job.id)).status).toBe("succeeded");

    // Read inside the job's object: the error crosses the RPC and still names the variable.
    await gw.restart(vars({ RETENTION_S: "30" }));
    await expectConfigError(await client().get(`/v1/jobs/${job.id}`), "RETENTION_S");

    // A schedule with an empty entry refuses the job with a webhook at once: nothing is sent.
    await gw.restart(vars({ WEBHOOK_RETRY_SCHEDULE: "5,,300" }));
    await expectConfigError(await client().post("/v1/jobs", { type: "txt2img", prompt: "hooked", width: 64, height: 64, webhook: `${receiver.url}/hook` }), "WEBHOOK_RETRY_SCHEDULE");
    await new Promise((r) => setTimeout(r, 1000));
    expect(receiver.deliveries).toHaveLength(0);

    // A default_webhook the gateway may not call is the operator's mistake, not the request's: no 422 on a field never sent.
    await gw.restart(vars({ ALLOW_PRIVATE_URLS: "false", TENANTS: JSON.stringify({ operator: { api_keys: [KEY], webhook_secrets: [SECRET], default_webhook: "https://127.0.0.1/hook" } }) }));
    await expectConfigError(await client().post("/v1/jobs", { type: "txt2img", prompt: "defaulted", width: 64, height: 64 }), "TENANTS");

    // A webhook secret that is not base64 would sign nothing: the tenant's every request names TENANTS, never the secret.
    await gw.restart(vars({ TENANTS: JSON.stringify({ operator: { api_keys: [KEY], webhook_secrets: ["whsec_A"] } }) }));
    const res = await client().get("/v1/jobs");
    const text = await res.clone().text();
    expect(text).not.toContain("whsec_A");
    await expectConfigError(res, "TENANTS");
  });
});

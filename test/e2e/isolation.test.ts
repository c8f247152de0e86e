/**
 * Tenant isolation, tried as an attacker would: two tenants on one gateway, sharing its backend
 * and storage, one of them hostile. Each test is one hole of issue 8 that it closes.
 */
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AwsClient } from "aws4fetch";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { api, pngSize, waitForJob, waitForStatus, type JobView } from "./support/client";
import { freePort, startGateway, startSimulatorProcess, type GatewayProcess, type SimulatorProcess } from "./support/processes";
import { startReceiver } from "./support/receiver";

const ALICE = "sk_alice_1";
const MALLORY = "sk_mallory_1";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PNG = Buffer.from(encodePng(64, 64, (x, y) => [x * 4, y * 4, 200]));
const PNG_B64 = PNG.toString("base64");
const basic = (key: string) => ({ authorization: `Basic ${Buffer.from(`user:${key}`).toString("base64")}`, "content-type": "application/json" });

let sim: SimulatorProcess;
let gw: GatewayProcess;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let s3: S3rver;
let s3Requests = 0;
let s3Proxy: Server;
const dirs: string[] = [];

beforeAll(async () => {
  // A model the backend lacks fails there (a 500), so one tenant's requests can fail on a shared backend.
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20, serial: true, unknownModelFails: true }) } });
  receiver = await startReceiver({ secrets: [SECRET] });

  // s3rver behind a counting proxy, so a test can tell that a refused link never reached S3.
  const s3Port = await freePort();
  const s3Dir = mkdtempSync(join(tmpdir(), "easel-s3-iso-"));
  dirs.push(s3Dir);
  s3 = new S3rver({ port: s3Port, address: "127.0.0.1", silent: true, directory: s3Dir, configureBuckets: [{ name: "shared", configs: [] }] });
  await s3.run();
  const aws = new AwsClient({ accessKeyId: "S3RVER", secretAccessKey: "S3RVER", region: "us-east-1", service: "s3" });
  for (const key of ["alice/cat.png", "bob/cat.png"]) expect((await aws.fetch(`http://127.0.0.1:${s3Port}/shared/${key}`, { method: "PUT", body: PNG })).ok).toBe(true);
  s3Proxy = createServer((req, res) => {
    s3Requests++;
    const upstream = new URL(req.url ?? "/", `http://127.0.0.1:${s3Port}`);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      fetch(upstream, { method: req.method, headers: req.headers as Record<string, string>, body: chunks.length ? Buffer.concat(chunks) : undefined })
        .then(async (r) => {
          res.writeHead(r.status, Object.fromEntries(r.headers));
          res.end(Buffer.from(await r.arrayBuffer()));
        })
        .catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((r) => s3Proxy.listen(0, "127.0.0.1", r));

  const dir = mkdtempSync(join(tmpdir(), "easel-e2e-iso-"));
  dirs.push(dir);
  gw = await startGateway({
    persistDir: dir,
    vars: {
      TENANTS: JSON.stringify({
        alice: { api_keys: [ALICE], webhook_secrets: [SECRET], s3_read_prefixes: ["shared/alice/"] },
        mallory: { api_keys: [MALLORY], webhook_secrets: [SECRET] },
      }),
      // Two in flight, so one request can wait inside A1111 (serial, as the real one) behind another.
      BACKENDS: JSON.stringify([{ name: "shared-a1111", kind: "a1111", url: sim.url, max_concurrency: 2, circuit_cooldown_s: 60 }]),
      // A pin sends any model, listed or not: what the backend makes of it is the request's doing.
      ENDPOINTS: JSON.stringify({ pinned: { backend: "shared-a1111" } }),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "iso-secret",
      WEBHOOK_RETRY_SCHEDULE: "1,1",
      S3_ENDPOINT: `http://127.0.0.1:${(s3Proxy.address() as AddressInfo).port}`,
      S3_REGION: "us-east-1",
      S3_ACCESS_KEY_ID: "S3RVER",
      S3_SECRET_ACCESS_KEY: "S3RVER",
    },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await receiver?.close();
  await s3?.close();
  await new Promise<void>((r) => (s3Proxy ? s3Proxy.close(() => r()) : r()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Until the simulator generates nothing: a request canceled earlier may still be running there. */
async function idle(): Promise<void> {
  const until = Date.now() + 30_000;
  while ((await sim.stats()).current > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  await sim.reset();
}

const alice = () => api(gw.url, ALICE);
const mallory = () => api(gw.url, MALLORY);

describe("client strings are data", () => {
  it("never expands a reference to another tenant's image written into track_id or a prompt", async () => {
    const victim = (await (await alice().post("/v1/jobs", { type: "img2img", prompt: "private", init_image: PNG_B64 })).json()) as JobView;
    await waitForJob(alice(), victim.id);
    const marker = `\u0000easel-r2:inputs/${victim.id}/init`;
    const outputMarker = `\u0000easel-r2:outputs/${victim.id}/image_0.png`;

    const v1 = await mallory().post("/v1/jobs", { type: "txt2img", prompt: outputMarker, track_id: marker, webhook: `${receiver.url}/mallory-v1` });
    expect(v1.status).toBe(202);
    const v1Id = ((await v1.json()) as JobView).id;
    const v1Hit = await receiver.waitFor((d) => d.path === "/mallory-v1" && (d.json as { type: string }).type === "job.succeeded", 30_000);
    expect(v1Hit.verified).toEqual([true]);
    expect((v1Hit.json as { data: JobView }).data).toMatchObject({ id: v1Id, track_id: marker });

    // RunPod bodies carry the job's own images and echo the request: only its own images are filled in.
    const rp = await fetch(`${gw.url}/runpod/run`, {
      method: "POST",
      headers: { authorization: `Bearer ${MALLORY}`, "content-type": "application/json" },
      body: JSON.stringify({ input: { api_name: "txt2img", prompt: marker, negative_prompt: outputMarker.repeat(50) }, webhook: `${receiver.url}/mallory-rp` }),
    });
    expect(rp.status).toBe(200);
    const rpHit = await receiver.waitFor((d) => d.path === "/mallory-rp", 30_000);
    const output = (rpHit.json as { output: { images: string[]; parameters: { prompt: string; negative_prompt: string } } }).output;
    expect(output.parameters.prompt).toBe(marker);
    expect(output.parameters.negative_prompt).toBe(outputMarker.repeat(50));
    expect(output.images).toHaveLength(1);
    expect(pngSize(Buffer.from(output.images[0] ?? "", "base64"))).toEqual({ width: 512, height: 512 });
    expect(rpHit.body).not.toContain(PNG_B64);
  });
});

describe("s3:// links", () => {
  const eksTask = (id: string, link: string) => ({
    task: { metadata: { id, runtime: "sdruntime", tasktype: "image-to-image", prefix: `iso-${id}`, context: "" }, content: { prompt: "cat", steps: 4, width: 64, height: 64, init_images: [link] } },
  });
  const submitEks = (key: string, body: unknown) => fetch(`${gw.url}/eks/v1/tasks`, { method: "POST", headers: { "x-api-key": key, "content-type": "application/json" }, body: JSON.stringify(body) });

  it("are read under the tenant's own prefix, and refused elsewhere before S3 is asked, existing or not", async () => {
    expect((await submitEks(ALICE, eksTask("s3-own", "s3://shared/alice/cat.png"))).status).toBe(200);
    const before = s3Requests;
    for (const [key, link] of [
      [ALICE, "s3://shared/bob/cat.png"],
      [ALICE, "s3://shared/bob/none.png"],
      [ALICE, "s3://shared/alice/../bob/cat.png"],
      [MALLORY, "s3://shared/alice/cat.png"],
    ] as const) {
      const res = await submitEks(key, eksTask(`s3-${Math.random().toString(36).slice(2)}`, link));
      expect(res.status).toBe(422);
      expect(await res.json()).toMatchObject({ errors: [{ path: "task.content.init_images.0" }] });
    }
    expect(s3Requests).toBe(before);
  });
});

describe("output locations a client chooses (SD-on-EKS)", () => {
  it("keep a task's images in its tenant's own place, even one named like another tenant's ComfyUI upload folder", async () => {
    const form = new FormData();
    form.append("image", new Blob([PNG], { type: "image/png" }), "image_0.png");
    form.append("subfolder", "mine/x");
    const up = await fetch(`${gw.url}/upload/image`, { method: "POST", headers: { authorization: `Bearer ${ALICE}` }, body: form });
    expect(up.status, await up.clone().text()).toBe(200);
    const view = () => fetch(`${gw.url}/view?filename=image_0.png&subfolder=mine/x&type=input`, { headers: { authorization: `Bearer ${ALICE}` } });
    expect(pngSize(new Uint8Array(await (await view()).arrayBuffer()))).toEqual({ width: 64, height: 64 });

    // Mallory's task names alice's upload folder as its location: comfy/alice/input/mine + id x.
    const task = { task: { metadata: { id: "x", runtime: "sdruntime", tasktype: "text-to-image", prefix: "comfy/alice/input/mine" }, content: { prompt: "mallory", width: 72, height: 80, steps: 2 } } };
    const res = await fetch(`${gw.url}/prod/v1alpha2`, { method: "POST", headers: { "x-api-key": MALLORY, "content-type": "application/json" }, body: JSON.stringify(task) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ output_location: "r2://easel-images/comfy/alice/input/mine/x" });
    const done = await waitForJob(mallory(), res.headers.get("x-easel-run-id") ?? "");
    expect(done.status).toBe("succeeded");
    expect(pngSize(new Uint8Array(await (await fetch(done.output[0]?.url ?? "")).arrayBuffer()))).toEqual({ width: 72, height: 80 });
    // Alice's upload is hers as it was.
    expect(pngSize(new Uint8Array(await (await view()).arrayBuffer()))).toEqual({ width: 64, height: 64 });
  });
});

describe("backend callbacks", () => {
  it("answer a callback the gateway did not issue with a 404, even a 40 MiB one", async () => {
    const runId = `run_${"a".repeat(26)}`;
    const small = await fetch(`${gw.url}/internal/callbacks/${runId}/1/forged`, { method: "POST", body: "{}" });
    expect(small.status).toBe(404);
    const big = await fetch(`${gw.url}/internal/callbacks/${runId}/1/forged`, { method: "POST", body: "x".repeat(40 * 1024 * 1024) });
    expect(big.status).toBe(404);
    // The job the forged id names does not exist for anyone.
    expect((await alice().get(`/v1/jobs/${runId}`)).status).toBe(404);
  });
});

describe("output links", () => {
  it("are a 403 with the signature missing, wrong, given twice, or the expiry moved or given twice", async () => {
    const job = (await (await alice().post("/v1/jobs", { type: "txt2img", prompt: "link" })).json()) as JobView;
    const url = new URL((await waitForJob(alice(), job.id)).output[0]?.url ?? "");
    expect((await fetch(url)).status).toBe(200);
    const noSig = new URL(url);
    noSig.searchParams.delete("sig");
    const wrong = new URL(url);
    wrong.searchParams.set("sig", "A".repeat(43));
    const moved = new URL(url);
    moved.searchParams.set("expires", String(Number(url.searchParams.get("expires")) + 3600));
    const noExpiry = new URL(url);
    noExpiry.searchParams.delete("expires");
    // A second expiry or signature beside the signed one, before or after it.
    const twoExpiries = new URL(url);
    twoExpiries.searchParams.append("expires", String(Number(url.searchParams.get("expires")) + 100_000));
    const expiryFirst = new URL(`${url.origin}${url.pathname}?expires=${Number(url.searchParams.get("expires")) + 100_000}&${url.searchParams.toString()}`);
    const twoSigs = new URL(url);
    twoSigs.searchParams.append("sig", "AAAA");
    for (const bad of [noSig, wrong, moved, noExpiry, twoExpiries, expiryFirst, twoSigs]) {
      const res = await fetch(bad);
      expect(res.status).toBe(403);
      expect(res.headers.get("content-type")).toMatch(/json/);
    }
  });
});

describe("a shared A1111", () => {
  it("cancels a job waiting inside A1111 without interrupting the neighbour that is generating", async () => {
    await sim.config({ msPerImage: 1500 });
    await idle();
    try {
      const running = (await (await alice().post("/v1/jobs", { type: "txt2img", prompt: "alice's long one", seed: 1 })).json()) as JobView;
      await waitForStatus(alice(), running.id, "running");
      const queued = (await (await mallory().post("/v1/jobs", { type: "txt2img", prompt: "mallory's" })).json()) as JobView;
      await waitForStatus(mallory(), queued.id, "running");
      await new Promise((r) => setTimeout(r, 200));
      expect((await mallory().post(`/v1/jobs/${queued.id}/cancel`)).status).toBe(200);

      const done = await waitForJob(alice(), running.id, 30_000);
      expect(done.status).toBe("succeeded");
      expect(done.output).toHaveLength(1);
      const image = new Uint8Array(await (await fetch(done.output[0]?.url ?? "")).arrayBuffer());
      expect(pngSize(image)).toEqual({ width: 512, height: 512 });
      const stats = await sim.stats();
      expect(stats.interrupts).toBe(0);
      expect(stats.interrupted).toBe(0);
      expect((await waitForJob(mallory(), queued.id)).status).toBe("canceled");
    } finally {
      await sim.config({ msPerImage: 20 });
    }
  });

  it("lets a generation about to end finish instead of interrupting it, so the interrupt cannot land on the next one", async () => {
    await sim.config({ msPerImage: 2000 });
    await idle();
    try {
      const job = (await (await mallory().post("/v1/jobs", { type: "txt2img", prompt: "nearly done", steps: 20 })).json()) as JobView;
      await waitForStatus(mallory(), job.id, "running");
      // Under a second left by A1111's estimate, and still generating when the cancel is sent.
      let progress = { active: false, eta: null as number | null };
      const until = Date.now() + 10_000;
      while (!(progress.active && progress.eta !== null && progress.eta < 0.8) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
        const running = ((await (await fetch(`${sim.url}/_sim/tasks`)).json()) as { running: string[] }).running[0];
        progress = (await (await fetch(`${sim.url}/internal/progress`, { method: "POST", body: JSON.stringify({ id_task: running }) })).json()) as typeof progress;
      }
      expect(progress.active).toBe(true);
      expect((await mallory().post(`/v1/jobs/${job.id}/cancel`)).status).toBe(200);
      expect((await waitForJob(mallory(), job.id)).status).toBe("canceled");
      await new Promise((r) => setTimeout(r, 1500));
      expect((await sim.stats()).interrupts).toBe(0);
    } finally {
      await sim.config({ msPerImage: 20 });
    }
  });

  it("interrupts the backend when the canceled job is the one generating", async () => {
    await sim.config({ msPerImage: 3000 });
    await idle();
    try {
      const job = (await (await mallory().post("/v1/jobs", { type: "txt2img", prompt: "to stop" })).json()) as JobView;
      await waitForStatus(mallory(), job.id, "running");
      await new Promise((r) => setTimeout(r, 500));
      expect((await mallory().post(`/v1/jobs/${job.id}/cancel`)).status).toBe(200);
      const until = Date.now() + 10_000;
      while ((await sim.stats()).interrupts === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect((await sim.stats()).interrupts).toBe(1);
      expect((await waitForJob(mallory(), job.id)).status).toBe("canceled");
    } finally {
      await sim.config({ msPerImage: 20 });
    }
  });

  it("keeps settings and files of the backend as they were, whatever a request passes through", async () => {
    await sim.reset();
    const res = await fetch(`${gw.url}/sdapi/v1/txt2img`, {
      method: "POST",
      headers: basic(MALLORY),
      body: JSON.stringify({ prompt: "switch it", override_settings: { sd_model_checkpoint: "chilloutmix-Ni" }, override_settings_restore_afterwards: false, save_images: true }),
    });
    expect(res.status).toBe(200);
    const options = (await (await fetch(`${sim.url}/sdapi/v1/options`)).json()) as { sd_model_checkpoint: string };
    expect(options.sd_model_checkpoint).toBe("v1-5-pruned-emaonly.safetensors [6ce0161689]");
    expect((await sim.stats()).filesWritten).toBe(0);
  });

  it("does not let a tenant's own bad requests open the circuit for everyone", async () => {
    for (let i = 0; i < 4; i++) {
      // A script A1111 does not have: its 422 is the request's fault, not the backend's.
      const res = await fetch(`${gw.url}/sdapi/v1/txt2img`, { method: "POST", headers: basic(MALLORY), body: JSON.stringify({ prompt: `no such script ${i}`, script_name: "no such script" }) });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    }
    const started = Date.now();
    const job = (await (await alice().post("/v1/jobs", { type: "txt2img", prompt: "after mallory" })).json()) as JobView;
    expect((await waitForJob(alice(), job.id, 20_000)).status).toBe("succeeded");
    // The circuit would have held the job for its whole 60 s cool-down.
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("does not let one tenant's jobs that fail on the backend (a model it lacks, through a pin) open the circuit for the other", async () => {
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${gw.url}/v2/pinned/runsync`, {
        method: "POST",
        headers: { authorization: `Bearer ${MALLORY}`, "content-type": "application/json" },
        body: JSON.stringify({ input: { api_name: "txt2img", prompt: `missing model ${i}`, override_settings: { sd_model_checkpoint: "no-such-model" } } }),
      });
      expect(((await res.json()) as { status: string }).status).toBe("FAILED");
    }
    const backends = (await (await alice().get("/v1/backends")).json()) as { data: { name: string; circuit: string }[] };
    expect(backends.data.find((b) => b.name === "shared-a1111")?.circuit).toBe("closed");
    const started = Date.now();
    const job = (await (await alice().post("/v1/jobs", { type: "txt2img", prompt: "after mallory's failures" })).json()) as JobView;
    expect((await waitForJob(alice(), job.id, 20_000)).status).toBe("succeeded");
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("shows tenants Easel's own words for a backend failure, never the backend's text", async () => {
    await sim.config({ errorRate: 1 });
    try {
      const job = (await (await mallory().post("/v1/jobs", { type: "txt2img", prompt: "fails" })).json()) as JobView;
      const failed = await waitForJob(mallory(), job.id, 30_000);
      expect(failed.status).toBe("failed");
      const events = JSON.stringify(await (await mallory().get(`/v1/jobs/${job.id}/events`)).json());
      expect(JSON.stringify(failed.error) + events).not.toContain("simulated backend failure");
      expect(failed.error?.message).toBe("the backend reported an error");
    } finally {
      await sim.config({ errorRate: 0 });
    }
  });
});

describe("idempotency and large fields", () => {
  it("leaves the key free when the first submit was refused for its image", async () => {
    const headers = { "idempotency-key": `iso-${Date.now()}` };
    const bad = await alice().post("/v1/jobs", { type: "img2img", prompt: "x", init_image: Buffer.from("not an image at all").toString("base64") }, headers);
    expect(bad.status).toBe(422);
    const good = await alice().post("/v1/jobs", { type: "img2img", prompt: "x", init_image: PNG_B64 }, headers);
    expect(good.status).toBe(202);
    const again = await alice().post("/v1/jobs", { type: "img2img", prompt: "x", init_image: PNG_B64 }, headers);
    expect(((await again.json()) as JobView).id).toBe(((await good.json()) as JobView).id);
  });

  it("takes pass-through fields over 2 MB (a ControlNet image) without a 500", async () => {
    // A real PNG (intake checks the images there as it checks an init image), 3 MiB by a text chunk inside it.
    const chunk = Buffer.alloc(12 + 3 * 1024 * 1024);
    chunk.writeUInt32BE(chunk.length - 12, 0);
    chunk.write("tEXt", 4, "latin1");
    const big = Buffer.concat([PNG.subarray(0, 33), chunk, PNG.subarray(33)]).toString("base64");
    const a1111 = await fetch(`${gw.url}/sdapi/v1/txt2img`, {
      method: "POST",
      headers: basic(ALICE),
      body: JSON.stringify({ prompt: "controlnet", alwayson_scripts: { controlnet: { args: [{ image: big }] } } }),
    });
    expect(a1111.status).toBe(200);
    expect(((await a1111.json()) as { images: string[] }).images).toHaveLength(1);
    const rp = await fetch(`${gw.url}/runpod/runsync`, {
      method: "POST",
      headers: { authorization: `Bearer ${ALICE}`, "content-type": "application/json" },
      body: JSON.stringify({ input: { api_name: "txt2img", prompt: "controlnet", alwayson_scripts: { controlnet: { args: [{ image: big }] } } } }),
    });
    expect(rp.status).toBe(200);
    expect(await rp.json()).toMatchObject({ status: "COMPLETED" });
  });
});

describe("signing key", () => {
  it("keeps links valid when TENANTS changes across a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "easel-e2e-iso-key-"));
    dirs.push(dir);
    const vars = (tenants: Record<string, unknown>) => ({
      TENANTS: JSON.stringify(tenants),
      BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url }]),
      ALLOW_PRIVATE_URLS: "true",
      URL_SIGNING_SECRET: "iso-restart-secret",
    });
    const one = { alice: { api_keys: [ALICE], webhook_secrets: [SECRET] } };
    const local = await startGateway({ persistDir: dir, vars: vars(one) });
    try {
      const client = api(local.url, ALICE);
      const job = (await (await client.post("/v1/jobs", { type: "txt2img", prompt: "kept" })).json()) as JobView;
      const link = (await waitForJob(client, job.id)).output[0]?.url ?? "";
      expect((await fetch(link)).status).toBe(200);
      await local.restart(vars({ ...one, alice: { api_keys: ["sk_alice_rotated"], webhook_secrets: [SECRET] }, newcomer: { api_keys: ["sk_new"] } }));
      const res = await fetch(link);
      expect(res.status).toBe(200);
      expect(pngSize(new Uint8Array(await res.arrayBuffer()))).toEqual({ width: 512, height: 512 });
    } finally {
      await local.stop();
    }
  });
});

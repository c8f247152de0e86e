/**
 * SD-on-EKS's own test requests (test/fixtures/sd-on-eks/, as fetched), POSTed the way its
 * `test/run.sh` does, against a real gateway that writes outputs to a real S3-compatible server
 * (s3rver) in SD-on-EKS's own layout. The results are read back from the bucket with signed GETs,
 * as code that reads SD-on-EKS's bucket does.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AwsClient } from "aws4fetch";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePng } from "../../gpu-simulator/png";
import { api, pngSize, type JobView } from "./support/client";
import { freePort, startGateway, startSimulatorProcess } from "./support/processes";
import { startReceiver, type Delivery } from "./support/receiver";

const KEY = "sk_eks_v1alpha2";
const KEY_V1 = "sk_eks_v1alpha1";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BUCKET = "sdoneks-outputs";
/** Another bucket the operator's S3 key can write: no task may place anything there. */
const VICTIM_BUCKET = "victim-bucket";
const HF_CAT = "https://huggingface.co/datasets/huggingface/documentation-images/resolve/main/diffusers/cat.png";
/** The cat, as the loopback server hands it out: 96x64, so an output derived from it shows. */
const CAT = Buffer.from(encodePng(96, 64, (x, y) => [x * 2, y * 3, 90]));

let sim: Awaited<ReturnType<typeof startSimulatorProcess>>;
let gw: Awaited<ReturnType<typeof startGateway>>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let images: Server;
let imageBase: string;
let s3: S3rver;
let s3Url: string;
let dirs: string[] = [];
const aws = new AwsClient({ accessKeyId: "S3RVER", secretAccessKey: "S3RVER", region: "us-east-1", service: "s3" });

/** A fixture as SD-on-EKS ships it, its image link moved to the loopback server (only the host changes). */
const fixture = (path: string): string => readFileSync(resolve(import.meta.dirname, "../fixtures/sd-on-eks", path), "utf8").replaceAll(HF_CAT, `${imageBase}/cat.png`);

beforeAll(async () => {
  sim = await startSimulatorProcess({ env: { SIM_CONFIG: JSON.stringify({ msPerImage: 20 }) } });
  receiver = await startReceiver({ secrets: [SECRET] });
  images = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "image/png" });
    res.end(CAT);
  });
  await new Promise<void>((r) => images.listen(0, "127.0.0.1", r));
  imageBase = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
  const s3Port = await freePort();
  const s3Dir = mkdtempSync(join(tmpdir(), "easel-s3-eks-"));
  dirs.push(s3Dir);
  s3 = new S3rver({ port: s3Port, address: "127.0.0.1", silent: true, directory: s3Dir, configureBuckets: [BUCKET, VICTIM_BUCKET].map((name) => ({ name, configs: [] })) });
  await s3.run();
  s3Url = `http://127.0.0.1:${s3Port}`;
  const dir = mkdtempSync(join(tmpdir(), "easel-e2e-eks-"));
  dirs.push(dir);
  gw = await startGateway({
    persistDir: dir,
    vars: {
      // Each tenant's notifications go to its default webhook, as an SNS subscription would.
      TENANTS: JSON.stringify({
        v2: { api_keys: [KEY], webhook_secrets: [SECRET], default_webhook: `${receiver.url}/sns-v2` },
        v1: { api_keys: [KEY_V1], webhook_secrets: [SECRET], default_webhook: `${receiver.url}/sns-v1` },
      }),
      BACKENDS: JSON.stringify([{ name: "sim", kind: "a1111", url: sim.url }]),
      ...storeVars(BUCKET),
    },
  });
});

afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await receiver?.close();
  images?.close();
  await s3?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A gateway's settings for the loopback s3rver, its outputs going to `bucket`. */
const storeVars = (bucket: string) => ({
  ALLOW_PRIVATE_URLS: "true",
  URL_SIGNING_SECRET: "e2e",
  S3_ENDPOINT: s3Url,
  S3_REGION: "us-east-1",
  S3_ACCESS_KEY_ID: "S3RVER",
  S3_SECRET_ACCESS_KEY: "S3RVER",
  S3_OUTPUT_BUCKET: bucket,
});

/** `curl -X POST ${API_ENDPOINT}/${API_VERSION}/ -H "Content-Type: application/json" -H "x-api-key: ${API_KEY}" -d @file` */
const runSh = (path: string, body: string, key = KEY) => fetch(`${gw.url}${path}`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": key }, body });

/** Reads an s3:// object back from the bucket with a signed GET. */
async function s3Get(url: string): Promise<Buffer> {
  const m = url.match(/^s3:\/\/([^/]+)\/(.+)$/);
  if (!m) throw new Error(`not an s3 url: ${url}`);
  const res = await aws.fetch(`${s3Url}/${m[1]}/${m[2]}`);
  expect(res.status, url).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** Every key in a bucket (s3rver lists up to 1,000, far more than these tests write). */
async function s3Keys(bucket: string): Promise<string[]> {
  const res = await aws.fetch(`${s3Url}/${bucket}?list-type=2`);
  expect(res.status, bucket).toBe(200);
  return [...(await res.text()).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1] ?? "").sort();
}

type Notification = { id: string; result: boolean; image_url: string[]; output_url: string; context: unknown };
const notified = async (path: string, id: string): Promise<Notification> => (await receiver.waitFor((d: Delivery) => d.path === path && (d.json as Notification).id === id, 30_000)).json as Notification;

/** A PNG's IDAT chunks: its pixels, whatever text chunks it carries. */
function imageData(png: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 8; at + 8 <= png.length; ) {
    const length = png.readUInt32BE(at);
    if (png.toString("ascii", at + 4, at + 8) === "IDAT") parts.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  return Buffer.concat(parts);
}

describe("SD-on-EKS test/run.sh against /{stage}/v1alpha2/", () => {
  it("text-to-image (t2i.json): the images and the .out in the bucket in SD-on-EKS's layout, named by the notification", async () => {
    const res = await runSh("/prod/v1alpha2/", fixture("v1alpha2/t2i.json"));
    expect(res.status).toBe(200);
    // `id` as SD-on-EKS's own submit function answers, `id_task` as its docs say.
    expect(await res.json()).toEqual({ id: "test-t2i", id_task: "test-t2i", runtime: "sdruntime", output_location: `s3://${BUCKET}/output/test-t2i` });
    const note = await notified("/sns-v2", "test-t2i");
    expect(note.result).toBe(true);
    expect(note.context).toBe("");
    expect(note.image_url).toHaveLength(1);
    expect(note.image_url[0]).toMatch(new RegExp(`^s3://${BUCKET}/output/test-t2i/test-t2i-[0-9a-f]{4}-1\\.png$`));
    expect(note.output_url).toBe(note.image_url[0]?.replace(/-1\.png$/, ".out"));
    expect(pngSize(new Uint8Array(await s3Get(note.image_url[0] ?? "")))).toEqual({ width: 512, height: 512 });
    const out = JSON.parse((await s3Get(note.output_url)).toString("utf8")) as { images: string[]; parameters: Record<string, unknown>; info: string };
    expect(out.images).toEqual([""]);
    expect(out.info).toBe("");
    expect(out.parameters).toMatchObject({ prompt: "A dog", steps: 16, width: 512, height: 512, id_task: "test-t2i", error_msg: "" });
    expect(String(out.parameters.image_seed)).toMatch(/^\d+$/);
    // The job behind the task is a canonical job too.
    const runId = res.headers.get("x-easel-run-id") ?? "";
    expect(((await (await api(gw.url, KEY).get(`/v1/jobs/${runId}`)).json()) as JobView).status).toBe("succeeded");
  });

  it("image-to-image (i2i.json): its image link in alwayson_scripts.image_link is fetched and used", async () => {
    const res = await runSh("/prod/v1alpha2/", fixture("v1alpha2/i2i.json"));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id_task: "test-i2i", output_location: `s3://${BUCKET}/output/test-i2i` });
    const note = await notified("/sns-v2", "test-i2i");
    expect(note.result).toBe(true);
    const png = await s3Get(note.image_url[0] ?? "");
    expect(pngSize(new Uint8Array(png))).toEqual({ width: 512, height: 512 });
    // The backend made it from the linked cat: the same call with that image as init gives the same bytes, without it others.
    const seed = Number((JSON.parse((await s3Get(note.output_url)).toString("utf8")) as { parameters: { image_seed: string } }).parameters.image_seed);
    const prompt = "cat wizard, gandalf, lord of the rings, detailed, fantasy, cute, adorable, Pixar, Disney, 8k";
    const direct = async (path: string, extra: Record<string, unknown>) =>
      ((await (await fetch(`${sim.url}${path}`, { method: "POST", body: JSON.stringify({ prompt, seed, width: 512, height: 512, ...extra }) })).json()) as { images: string[] }).images[0];
    // Pixels compared, not text chunks: the infotext A1111 writes names each request's own settings.
    const pixels = (b64: string | undefined) => imageData(Buffer.from(b64 ?? "", "base64"));
    expect(pixels(await direct("/sdapi/v1/img2img", { init_images: [CAT.toString("base64")] }))).toEqual(imageData(png));
    expect(pixels(await direct("/sdapi/v1/txt2img", {}))).not.toEqual(imageData(png));
  });

  it("extra-single-image (extra-single-image.json): the linked image upscaled 4x, html_info in the .out", async () => {
    const res = await runSh("/prod/v1alpha2/", fixture("v1alpha2/extra-single-image.json"));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id_task: "test-extra", output_location: `s3://${BUCKET}/output/test-extra` });
    const note = await notified("/sns-v2", "test-extra");
    expect(note.result).toBe(true);
    expect(pngSize(new Uint8Array(await s3Get(note.image_url[0] ?? "")))).toEqual({ width: 384, height: 256 });
    const out = JSON.parse((await s3Get(note.output_url)).toString("utf8")) as { parameters: Record<string, unknown> };
    expect(out.parameters).toEqual({ html_info: expect.stringContaining("384x256"), id_task: "test-extra", error_msg: "" });
  });

  it("a task that fails still gets its .out (status 0, error_msg) and a notification with result false", async () => {
    await sim.config({ errorRate: 1 });
    try {
      const failing = JSON.parse(fixture("v1alpha2/t2i.json")) as { task: { metadata: Record<string, unknown> } };
      failing.task.metadata.id = "test-fails";
      failing.task.metadata.context = { order: 42 };
      expect((await runSh("/prod/v1alpha2/", JSON.stringify(failing))).status).toBe(200);
      const note = await notified("/sns-v2", "test-fails");
      expect(note).toMatchObject({ result: false, image_url: [], context: { order: 42 } });
      expect(note.output_url).toMatch(new RegExp(`^s3://${BUCKET}/output/test-fails/test-fails-[0-9a-f]{4}\\.out$`));
      const out = JSON.parse((await s3Get(note.output_url)).toString("utf8")) as { parameters: Record<string, unknown> };
      expect(out.parameters).toMatchObject({ id_task: "test-fails", status: 0, error_msg: expect.stringMatching(/backend/) });
    } finally {
      await sim.config({ errorRate: 0 });
    }
  });

  it("a task canceled while it runs still gets its .out (status 0, error_msg canceled), named by its notification", async () => {
    await sim.config({ msPerImage: 20_000 });
    try {
      const body = JSON.parse(fixture("v1alpha2/t2i.json")) as { task: { metadata: Record<string, unknown> } };
      body.task.metadata.id = "test-canceled";
      const res = await runSh("/prod/v1alpha2/", JSON.stringify(body));
      expect(res.status).toBe(200);
      const client = api(gw.url, KEY);
      const runId = res.headers.get("x-easel-run-id") ?? "";
      const canceled = await client.post(`/v1/jobs/${runId}/cancel`, {});
      expect(canceled.status).toBe(200);
      const note = await notified("/sns-v2", "test-canceled");
      expect(note).toMatchObject({ result: false, image_url: [] });
      const out = JSON.parse((await s3Get(note.output_url)).toString("utf8")) as { parameters: Record<string, unknown> };
      expect(out.parameters).toMatchObject({ id_task: "test-canceled", status: 0, error_msg: "canceled" });
    } finally {
      await sim.config({ msPerImage: 20 });
    }
  });

  it("refuses a task id used before (409) and a bad task (422), as {message}", async () => {
    const again = await runSh("/prod/v1alpha2", fixture("v1alpha2/t2i.json"));
    expect(again.status).toBe(409);
    expect(await again.json()).toEqual({ message: "task test-t2i already exists" });
    // In S3_OUTPUT_BUCKET every tenant's tasks share SD-on-EKS's layout: another account's location is a 409.
    const theirs = await runSh("/prod/v1alpha2", fixture("v1alpha2/t2i.json"), KEY_V1);
    expect(theirs.status).toBe(409);
    expect(await theirs.json()).toEqual({ message: expect.stringContaining("is in use") });
    // A repeat refused for its id claims no location: the place it named stays free for anyone.
    const once = (prefix: string) => {
      const t = JSON.parse(fixture("v1alpha2/t2i.json")) as { task: { metadata: Record<string, unknown> } };
      Object.assign(t.task.metadata, { id: "test-once", prefix });
      return JSON.stringify(t);
    };
    expect((await runSh("/prod/v1alpha2/", once("output"))).status).toBe(200);
    expect((await runSh("/prod/v1alpha2/", once("elsewhere"))).status).toBe(409);
    // Posted as test/run.sh posts to a stack endpoint that ends in a slash.
    const free = await runSh("/prod//v1alpha2/", once("elsewhere"), KEY_V1);
    expect(free.status).toBe(200);
    expect(await free.json()).toMatchObject({ output_location: `s3://${BUCKET}/elsewhere/test-once` });
    const bad = JSON.parse(fixture("v1alpha2/t2i.json")) as { task: { metadata: Record<string, unknown> } };
    bad.task.metadata.id = "test-bad";
    bad.task.metadata.tasktype = "inpaint";
    const refused = await runSh("/prod/v1alpha2/", JSON.stringify(bad));
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({ message: expect.any(String), errors: [{ path: "task.metadata.tasktype" }] });
    const dead = JSON.parse(fixture("v1alpha2/i2i.json")) as { task: { metadata: Record<string, unknown>; content: { alwayson_scripts: Record<string, unknown> } } };
    dead.task.metadata.id = "test-dead-link";
    dead.task.content.alwayson_scripts.image_link = "http://127.0.0.1:9/gone.png";
    const unreachable = await runSh("/prod/v1alpha2/", JSON.stringify(dead));
    expect(unreachable.status).toBe(422);
    expect(await unreachable.json()).toMatchObject({ errors: [{ path: "task.content.alwayson_scripts.image_link" }] });
    expect((await runSh("/prod/v1alpha2/", fixture("v1alpha2/t2i.json"), "wrong")).status).toBe(401);
  });
});

describe("SD-on-EKS v1alpha1 (seed 001's flat form) against /{stage}/v1alpha1", () => {
  it("t2i.json and i2i.json: save_dir is the outputs' directory, output_location <save_dir>/<id_task>, the objects under it", async () => {
    for (const [file, id] of [
      ["v1alpha1/t2i.json", "test-t2i"],
      ["v1alpha1/i2i.json", "test-i2i"],
    ] as const) {
      const res = await runSh("/prod/v1alpha1", fixture(file), KEY_V1);
      expect(res.status, file).toBe(200);
      // The fixtures' save_dir is "outputs".
      expect(await res.json()).toEqual({ id_task: id, sd_model_checkpoint: "v1-5-pruned-emaonly.safetensors", output_location: `s3://${BUCKET}/outputs/${id}` });
      const note = await notified("/sns-v1", id);
      expect(note.result).toBe(true);
      // As SD-on-EKS's v1alpha1 function sends every task: an empty context object.
      expect(note.context).toEqual({});
      expect(note.image_url[0]).toMatch(new RegExp(`^s3://${BUCKET}/outputs/${id}/${id}-[0-9a-f]{4}-1\\.png$`));
      expect(note.output_url).toMatch(new RegExp(`^s3://${BUCKET}/outputs/${id}/${id}-[0-9a-f]{4}\\.out$`));
      expect(pngSize(new Uint8Array(await s3Get(note.image_url[0] ?? "")))).toEqual({ width: 512, height: 512 });
      expect((await s3Keys(BUCKET)).filter((k) => k.includes(`${id}-`) && !k.startsWith("output/"))).toEqual([expect.stringMatching(new RegExp(`^outputs/${id}/`)), expect.stringMatching(new RegExp(`^outputs/${id}/`))]);
    }
  });

  it("refuses a v1alpha1 body without its routing fields (422) and an unknown model (422), as {message}", async () => {
    const missing = await runSh("/prod/v1alpha1/", JSON.stringify({ prompt: "x", alwayson_scripts: { task: "text-to-image" } }), KEY_V1);
    expect(missing.status).toBe(422);
    expect(await missing.json()).toMatchObject({ errors: [{ path: "alwayson_scripts.id_task" }] });
    const unknown = await runSh("/prod/v1alpha1/", JSON.stringify({ prompt: "x", alwayson_scripts: { task: "text-to-image", id_task: "t-unknown", sd_model_checkpoint: "nope.safetensors" } }), KEY_V1);
    expect(unknown.status).toBe(422);
    expect(await unknown.json()).toMatchObject({ errors: [{ path: "alwayson_scripts.sd_model_checkpoint" }] });
  });
});

describe("SD-on-EKS storage keys: nothing a task names is written outside <prefix>/<id>/", () => {
  it("answers a prefix, save_dir or task id that walks out (plain or percent-encoded) with a 422 naming it, and writes no object and no job", async () => {
    const jobs = async (key: string) => ((await (await api(gw.url, key).get("/v1/jobs?limit=100")).json()) as { data: unknown[] }).data.length;
    const before = { own: await s3Keys(BUCKET), victim: await s3Keys(VICTIM_BUCKET), v2: await jobs(KEY), v1: await jobs(KEY_V1) };
    const v2 = (id: string, prefix: string) => {
      const body = JSON.parse(fixture("v1alpha2/t2i.json")) as { task: { metadata: Record<string, unknown> } };
      body.task.metadata.id = id;
      body.task.metadata.prefix = prefix;
      return JSON.stringify(body);
    };
    const v1 = (id: string, saveDir: string) => {
      const body = JSON.parse(fixture("v1alpha1/t2i.json")) as { alwayson_scripts: Record<string, unknown> };
      body.alwayson_scripts.id_task = id;
      body.alwayson_scripts.save_dir = saveDir;
      return JSON.stringify(body);
    };
    for (const [path, body, key, field] of [
      ["/prod/v1alpha2/", v2("walk-1", "out/../victim-bucket"), KEY, "task.metadata.prefix"],
      ["/prod/v1alpha2/", v2("walk-2", "out/../../victim-bucket"), KEY, "task.metadata.prefix"],
      ["/prod/v1alpha2/", v2("walk-3", "out/%2e%2e/%2E%2E/victim-bucket"), KEY, "task.metadata.prefix"],
      ["/prod/v1alpha2/", v2("walk-4", "/victim-bucket"), KEY, "task.metadata.prefix"],
      ["/prod/v1alpha2/", v2("..", "victim-bucket/x"), KEY, "task.metadata.id"],
      ["/prod/v1alpha1/", v1("walk-5", "outputs/../../victim-bucket"), KEY_V1, "alwayson_scripts.save_dir"],
    ] as const) {
      const res = await runSh(path, body, key);
      expect(res.status, `${field} in ${body.slice(0, 120)}`).toBe(422);
      expect(await res.json()).toMatchObject({ message: expect.stringContaining(field), errors: [{ path: field }] });
    }
    // Nothing was written anywhere the operator's key can write, and no job stands behind a refusal.
    expect(await s3Keys(VICTIM_BUCKET)).toEqual(before.victim);
    expect(await s3Keys(BUCKET)).toEqual(before.own);
    expect(await jobs(KEY)).toBe(before.v2);
    expect(await jobs(KEY_V1)).toBe(before.v1);
  });
});

describe("SD-on-EKS outputs when the bucket cannot take them", () => {
  it("fails the task once (output_write_failed) without running it again on another GPU or blaming the backend", async () => {
    // The bucket named is not there: S3 answers every PUT 404 NoSuchBucket, as it would a deleted bucket.
    const dir = mkdtempSync(join(tmpdir(), "easel-e2e-eks-nobucket-"));
    dirs.push(dir);
    const other = await startGateway({
      persistDir: dir,
      vars: {
        TENANTS: JSON.stringify({ v2: { api_keys: [KEY], webhook_secrets: [SECRET], default_webhook: `${receiver.url}/sns-nobucket` } }),
        BACKENDS: JSON.stringify([
          { name: "gpu-a", kind: "a1111", url: sim.url, types: ["txt2img"] },
          { name: "gpu-b", kind: "a1111", url: sim.url, types: ["txt2img"] },
        ]),
        ...storeVars("no-such-bucket"),
      },
    });
    try {
      const generations = async () => (await sim.stats()).requests["/sdapi/v1/txt2img"] ?? 0;
      const before = await generations();
      const body = JSON.parse(fixture("v1alpha2/t2i.json")) as { task: { metadata: Record<string, unknown>; content: Record<string, unknown> } };
      body.task.metadata.id = "bucket-gone";
      body.task.content = { ...body.task.content, width: 64, height: 64 };
      const res = await fetch(`${other.url}/prod/v1alpha2/`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": KEY }, body: JSON.stringify(body) });
      expect(res.status).toBe(200);
      const note = (await receiver.waitFor((d: Delivery) => d.path === "/sns-nobucket", 60_000)).json as Notification;
      expect(note).toMatchObject({ id: "bucket-gone", result: false, image_url: [] });
      const job = (await (await api(other.url, KEY).get(`/v1/jobs/${res.headers.get("x-easel-run-id") ?? ""}`)).json()) as JobView;
      expect(job).toMatchObject({ status: "failed", error: { code: "output_write_failed" } });
      // One generation, paid once: the store's failure is not the GPU's.
      expect((await generations()) - before).toBe(1);
      const backends = (await (await api(other.url, KEY).get("/v1/backends")).json()) as { data: { name: string; circuit: string; recent: { jobs: number } }[] };
      for (const b of backends.data) expect(b, b.name).toMatchObject({ circuit: "closed", recent: { jobs: 0 } });
      // A task type no backend here serves is refused naming the task's type, a field SD-on-EKS's request has.
      const upscale = await fetch(`${other.url}/prod/v1alpha2/`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": KEY }, body: fixture("v1alpha2/extra-single-image.json") });
      expect(upscale.status).toBe(422);
      expect(await upscale.json()).toMatchObject({ errors: [{ path: "task.metadata.tasktype" }] });
    } finally {
      await other.stop();
    }
  });
});

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EksTaskSchema, eksData, eksError, fromEks, outputLocation, outputPrefix, toEksNotification, toEksSubmitted, toEksTask } from "../../../src/dialects/eks/translate";
import { EaselError } from "../../../src/errors";
import { readS3Image } from "../../../src/lib/s3-fetch";
import seed from "../../fixtures/seeds/eks-image-to-image.json";
import { RUN_ID, call, snapshot } from "./support";

const withMetadata = (metadata: Record<string, unknown>) => ({ task: { ...seed.task, metadata: { ...seed.task.metadata, ...metadata } } });

describe("SD-on-EKS task → canonical job", () => {
  it("reads seed 001's task: metadata for the job, content as an A1111 payload", () => {
    const { task } = EksTaskSchema.parse(seed);
    expect(fromEks(task, task.content.init_images?.[0] ?? undefined, undefined)).toMatchObject({
      type: "img2img",
      prompt: seed.task.content.prompt,
      steps: 16,
      width: 512,
      height: 512,
      init_image: seed.task.content.init_images[0],
      a1111_extra: { alwayson_scripts: {} },
    });
    expect(outputPrefix(task)).toBe("output/test-i2i");
    expect(eksData(task)).toEqual({ id_task: "test-i2i", runtime: "sdruntime", context: "" });
    expect(toEksSubmitted(env, task)).toEqual({ id_task: "test-i2i", runtime: "sdruntime", output_location: "r2://easel-images/output/test-i2i" });
  });

  it("ignores init images of a text-to-image task, and takes fetched bytes for an image-to-image one", () => {
    const { task } = EksTaskSchema.parse(withMetadata({ tasktype: "text-to-image" }));
    expect(fromEks(task, "https://img.example/cat.png", undefined)).toMatchObject({ type: "txt2img", init_image: undefined });
    const bytes = new Uint8Array([1, 2, 3]);
    expect(fromEks(EksTaskSchema.parse(seed).task, bytes, undefined).init_image).toBe(bytes);
  });

  it("normalizes the prefix, keeps ids to one path segment, reserves the core's roots and caps context", () => {
    expect(outputPrefix(EksTaskSchema.parse(withMetadata({ prefix: "/a//b/" })).task)).toBe("a/b/test-i2i");
    const issues = (metadata: Record<string, unknown>) => EksTaskSchema.safeParse(withMetadata(metadata)).error?.issues.map((i) => i.path.join("."));
    expect(issues({ id: "../x" })).toEqual(["task.metadata.id"]);
    expect(issues({ prefix: "outputs/mine" })).toEqual(["task.metadata.prefix"]);
    expect(issues({ prefix: "inputs" })).toEqual(["task.metadata.prefix"]);
    expect(issues({ context: "x".repeat(20_000) })).toEqual(["task.metadata.context"]);
    expect(issues({ tasktype: "inpaint" })).toEqual(["task.metadata.tasktype"]);
  });
});

describe("canonical job → SD-on-EKS answers", () => {
  const data = { id_task: "test-i2i", runtime: "sdruntime", context: { order: 7 } };

  it("notifies {id, result, image_url, output_url, context}", async () => {
    const note = await toEksNotification(env, snapshot({ dialect: "eks", dialect_data: data, output_prefix: "output/test-i2i" }));
    expect(Object.keys(note).sort()).toEqual(["context", "id", "image_url", "output_url", "result"]);
    expect(note).toMatchObject({ id: "test-i2i", result: true, output_url: "r2://easel-images/output/test-i2i", context: { order: 7 } });
    expect(note.image_url).toHaveLength(2);
    const failed = await toEksNotification(env, snapshot({ status: "failed", dialect: "eks", dialect_data: data, output_prefix: "output/test-i2i" }));
    expect(failed).toMatchObject({ result: false, image_url: [] });
  });

  it("answers GET with the status and a signed link per image", async () => {
    const task = await toEksTask(env, snapshot({ dialect: "eks", dialect_data: data, output_prefix: "output/test-i2i" }));
    expect(task).toMatchObject({ id_task: "test-i2i", runtime: "sdruntime", status: "succeeded", output_location: "r2://easel-images/output/test-i2i", run_id: RUN_ID, error: null });
    expect(task.images[0]).toMatch(/^http:\/\/gateway\.test\/v1\/outputs\//);
    expect(outputLocation(env, "a/b")).toBe("r2://easel-images/a/b");
  });

  it("shapes errors as {message}", () => {
    expect(eksError(new EaselError(409, "task_exists", "task x already exists"))).toEqual({ message: "task x already exists" });
  });
});

describe("s3:// links", () => {
  it("are a 422 naming the field when malformed or when no S3 store is configured", async () => {
    const opts = { field: "task.content.init_images.0", maxBytes: 1024, allowedPrefixes: ["inputs/"] };
    const s3 = { endpoint: "http://127.0.0.1:9", region: "us-east-1", accessKeyId: "a", secretAccessKey: "b" };
    await expect(readS3Image("s3://bucket-only", s3, opts)).rejects.toMatchObject({ status: 422, code: "invalid_url" });
    await expect(readS3Image("s3://inputs/cat.png", undefined, opts)).rejects.toMatchObject({ status: 422, code: "s3_not_configured", details: [{ path: opts.field }] });
    await expect(readS3Image("s3://inputs/cat.png", s3, opts)).rejects.toMatchObject({ status: 422, code: "image_fetch_failed" });
  });

  it("are read only under the tenant's s3_read_prefixes, refused before S3 is asked", async () => {
    // An endpoint that would hang: a refusal that reached S3 would time out instead of answering.
    const s3 = { endpoint: "http://10.255.255.1", region: "us-east-1", accessKeyId: "a", secretAccessKey: "b" };
    const opts = { field: "f", maxBytes: 1024, timeoutMs: 60_000 };
    for (const [link, prefixes] of [
      ["s3://inputs/cat.png", []],
      ["s3://secrets/cat.png", ["inputs/"]],
      ["s3://inputs/alice/cat.png", ["inputs/bob/"]],
      ["s3://inputs/bob/../alice/cat.png", ["inputs/bob/"]],
      ["s3://inputs/bob//cat.png", ["inputs/bob/"]],
      ["s3://inputs-other/cat.png", ["inputs/"]],
    ] as const) {
      const started = Date.now();
      await expect(readS3Image(link, s3, { ...opts, allowedPrefixes: prefixes })).rejects.toMatchObject({ status: 422, details: [{ path: "f" }] });
      expect(Date.now() - started).toBeLessThan(1000);
    }
  });
});

describe("/eks/v1/tasks inside the Worker", () => {
  it("takes x-api-key or Bearer, and answers errors as {message} with a 4xx", async () => {
    const anon = await call("/eks/v1/tasks", { headers: { "x-api-key": "nope" }, body: seed });
    expect(anon.status).toBe(401);
    expect(await anon.json()).toMatchObject({ message: expect.any(String) });
    const reserved = await call("/eks/v1/tasks", { headers: { authorization: "Bearer sk_acme_1" }, body: withMetadata({ prefix: "outputs" }) });
    expect(reserved.status).toBe(422);
    expect(await reserved.json()).toMatchObject({ errors: [{ path: "task.metadata.prefix" }] });
    const s3 = await call("/eks/v1/tasks", { headers: { "x-api-key": "sk_acme_1" }, body: { task: { ...seed.task, content: { ...seed.task.content, init_images: ["s3://inputs/cat.png"] } } } });
    expect(s3.status).toBe(422);
    expect(await s3.json()).toMatchObject({ errors: [{ path: "task.content.init_images.0" }] });
    const unknown = await call("/eks/v1/tasks/never-sent", { headers: { "x-api-key": "sk_acme_1" } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ message: "task never-sent not found" });
  });
});

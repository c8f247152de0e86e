import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { chosenOutputPrefix } from "../../../src/storage/images";
import { EksTaskSchema, EksV1alpha1Schema, eksData, eksError, eksManifest, fromV1alpha1, fromV1alpha2, toEksNotification, toEksSubmitted, toEksTask, toIntake } from "../../../src/dialects/eks/translate";
import { EaselError } from "../../../src/errors";
import { readS3Image } from "../../../src/lib/s3-fetch";
import seed from "../../fixtures/seeds/eks-image-to-image.json";
import pipeline from "../../fixtures/sd-on-eks/v1alpha2/pipeline.json";
import { RUN_ID, call, snapshot } from "./support";

const withMetadata = (metadata: Record<string, unknown>) => ({ task: { ...seed.task, metadata: { ...seed.task.metadata, ...metadata } } });

describe("SD-on-EKS task → canonical job", () => {
  const task = () => fromV1alpha2(EksTaskSchema.parse(seed));

  it("reads seed 001's task: metadata for the job, content as an A1111 payload", () => {
    expect(toIntake(task(), seed.task.content, undefined).req).toMatchObject({
      type: "img2img",
      prompt: seed.task.content.prompt,
      steps: 16,
      width: 512,
      height: 512,
      init_image: seed.task.content.init_images[0],
      a1111_extra: { alwayson_scripts: {} },
    });
    expect(task().location).toBe("output/test-i2i");
    expect(eksData(task(), undefined, undefined)).toMatchObject({ id_task: "test-i2i", runtime: "sdruntime", context: "", version: "v1alpha2" });
    // No context: `{}`, as SD-on-EKS's queue agent notifies such a task.
    const { context: _omitted, ...bare } = seed.task.metadata;
    expect(fromV1alpha2(EksTaskSchema.parse({ task: { ...seed.task, metadata: bare } })).context).toEqual({});
    // `id` as SD-on-EKS's own submit function answers; the place in R2 under the tenant's root.
    expect(toEksSubmitted(env, "acme", task(), undefined)).toEqual({ id: "test-i2i", id_task: "test-i2i", runtime: "sdruntime", output_location: "r2://easel-images/output/test-i2i" });
  });

  it("takes an image-to-image's image from alwayson_scripts.image_link, strips the routing keys and moves their override_settings", () => {
    const content = { prompt: "x", override_settings: { CLIP_stop_at_last_layers: 2 }, alwayson_scripts: { image_link: "QUJD", sd_model_checkpoint: "v1-5", override_settings: { sd_vae: "auto" }, controlnet: { args: [] } } };
    const { req, fields } = toIntake(task(), content, "v1-5");
    expect(req).toMatchObject({ type: "img2img", init_image: "QUJD", model: "v1-5", a1111_extra: { alwayson_scripts: { controlnet: { args: [] } }, override_settings: { CLIP_stop_at_last_layers: 2, sd_vae: "auto" } } });
    expect(fields?.init_image).toBe("task.content.alwayson_scripts.image_link");
  });

  it("takes alwayson_scripts.image_link over init_images when both are there, as SD-on-EKS's queue agent replaces one with the other", () => {
    const { req, fields } = toIntake(task(), { prompt: "x", init_images: ["SU5JVA=="], alwayson_scripts: { image_link: "TElOSw==" } }, undefined);
    expect(req.init_image).toBe("TElOSw==");
    expect(fields?.init_image).toBe("task.content.alwayson_scripts.image_link");
  });

  it("ignores init images of a text-to-image task", () => {
    const t2i = fromV1alpha2(EksTaskSchema.parse(withMetadata({ tasktype: "text-to-image" })));
    expect(toIntake(t2i, seed.task.content, undefined).req).toMatchObject({ type: "txt2img", init_image: undefined });
  });

  it("reads v1alpha1's flat form: routing in alwayson_scripts, save_dir the outputs' directory as v1alpha2's prefix", () => {
    const body = EksV1alpha1Schema.parse({ alwayson_scripts: { task: "text-to-image", sd_model_checkpoint: "v1-5-pruned-emaonly.safetensors", id_task: "test-t2i", save_dir: "outputs" }, prompt: "A dog", steps: 16, width: 512, height: 512 });
    const t = fromV1alpha1(body);
    expect(t).toMatchObject({ version: "v1alpha1", id: "test-t2i", tasktype: "text-to-image", location: "outputs/test-t2i", under: "" });
    const { req } = toIntake(t, body, "v1-5-pruned-emaonly.safetensors");
    expect(req).toMatchObject({ type: "txt2img", prompt: "A dog", a1111_extra: { alwayson_scripts: {} } });
    expect(toEksSubmitted(env, "acme", t, "v1-5-pruned-emaonly.safetensors")).toEqual({ id_task: "test-t2i", sd_model_checkpoint: "v1-5-pruned-emaonly.safetensors", output_location: "r2://easel-images/outputs/test-t2i" });
    // Without save_dir the outputs go under the task id alone.
    const bare = fromV1alpha1(EksV1alpha1Schema.parse({ alwayson_scripts: { task: "text-to-image", id_task: "test-t2i" }, prompt: "A dog" }));
    expect(bare.location).toBe("test-t2i");
  });

  it("makes the extras task types upscales: one image, by upscaling_resize or to a size", () => {
    const extra = fromV1alpha2(EksTaskSchema.parse(withMetadata({ tasktype: "extra-single-image" })));
    expect(toIntake(extra, { image: "QUJD", upscaling_resize: 4, upscaler_1: "R-ESRGAN 4x+", gfpgan_visibility: 0 }, undefined).req).toMatchObject({ type: "upscale", init_image: "QUJD", scale: 4, upscaler: "R-ESRGAN 4x+", a1111_extra: { gfpgan_visibility: 0 } });
    const batch = fromV1alpha2(EksTaskSchema.parse(withMetadata({ tasktype: "extra-batch-image" })));
    expect(toIntake(batch, { imageList: [{ data: "QUJD", name: "a.png" }], resize_mode: 1, upscaling_resize_w: 1024, upscaling_resize_h: 768 }, undefined).req).toMatchObject({ type: "upscale", init_image: "QUJD", width: 1024, height: 768 });
    expect(() => toIntake(batch, { imageList: [{ data: "A" }, { data: "B" }] }, undefined)).toThrow(/task.content.imageList/);
  });

  it("keeps ids to one path segment, caps context and refuses unknown task types", () => {
    const issues = (metadata: Record<string, unknown>) => EksTaskSchema.safeParse(withMetadata(metadata)).error?.issues.map((i) => i.path.join("."));
    expect(issues({ id: "../x" })).toEqual(["task.metadata.id"]);
    expect(issues({ context: "x".repeat(20_000) })).toEqual(["task.metadata.context"]);
    expect(issues({ tasktype: "inpaint" })).toEqual(["task.metadata.tasktype"]);
  });
});

/** Prefixes (and save_dirs) that would place objects outside `<prefix>/<id>/` of the task, in any spelling. */
const BAD_PREFIXES = ["out/../victim-bucket", "../../victim-bucket", "out/..", "./out", "/a/b", "a//b", "a/b//", "/", "", "a\\..\\b", "out/\u0000x", "out/%2e%2e/victim-bucket", "out%2f..", "out/%252e%252e/x"];
/** Task ids that are not exactly one plain segment. */
const BAD_IDS = ["..", ".", "", "a/b", "%2e%2e", "a\\b", "a\nb"];

describe("SD-on-EKS pipeline tasks (its ComfyUI runtime)", () => {
  it("run their content, the API-format graph as its own test request sends it, as a workflow job", () => {
    const task = fromV1alpha2(EksTaskSchema.parse(pipeline));
    const { req, fields } = toIntake(task, task.content, undefined);
    expect(req).toEqual({ type: "workflow", workflow: pipeline.task.content, webhook: undefined });
    expect(fields).toEqual({ workflow: "task.content" });
    expect(toEksSubmitted(env, "acme", task, undefined)).toEqual({ id: "test-pipeline", id_task: "test-pipeline", runtime: "sdruntime", output_location: "r2://easel-images/output/test-pipeline" });
  });

  it("write the .out object its ComfyUI runtime writes: a status code", () => {
    const { input } = snapshot({ dialect: "eks", dialect_data: { id_task: "test-pipeline" }, spec: { type: "workflow", workflow: pipeline.task.content } });
    expect(eksManifest(input, { ok: true, outputs: [{ width: 512, height: 512, seed: null }] })).toEqual({ code: 200 });
    expect(eksManifest(input, { ok: false, message: "boom" })).toEqual({ code: 500 });
  });

  it("with a bad graph, are a 422 {message, errors} naming the node under task.content", async () => {
    const content = { ...pipeline.task.content, "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["40", 2] } } };
    const res = await call("/prod/v1alpha2/", { headers: { "x-api-key": "sk_acme_1" }, body: { task: { ...pipeline.task, content } } });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ errors: [{ path: "task.content.8.inputs.vae", message: 'links to node "40", which is not in the workflow' }] });
  });
});

describe("SD-on-EKS storage keys: prefix, save_dir and the task id", () => {
  const v2Issues = (metadata: Record<string, unknown>) => EksTaskSchema.safeParse(withMetadata(metadata)).error?.issues.map((i) => i.path.join("."));
  const v1 = (scripts: Record<string, unknown>) => ({ alwayson_scripts: { task: "text-to-image", id_task: "test-t2i", ...scripts }, prompt: "A dog" });
  const v1Issues = (scripts: Record<string, unknown>) => EksV1alpha1Schema.safeParse(v1(scripts)).error?.issues.map((i) => i.path.join("."));

  it.each(BAD_PREFIXES)("refuses the prefix and the save_dir %j, naming the field", (prefix) => {
    expect(v2Issues({ prefix })).toEqual(["task.metadata.prefix"]);
    expect(v1Issues({ save_dir: prefix })).toEqual(["alwayson_scripts.save_dir"]);
  });

  it.each(BAD_IDS)("refuses the task id %j, naming the field", (id) => {
    expect(v2Issues({ id })).toEqual(["task.metadata.id"]);
    expect(v1Issues({ id_task: id })).toEqual(["alwayson_scripts.id_task"]);
  });

  it("takes a prefix with one trailing slash as SD-on-EKS's queue agent does: `output/` and the id make `output/<id>`", () => {
    expect(fromV1alpha2(EksTaskSchema.parse(withMetadata({ prefix: "output/", id: "t-1" }))).location).toBe("output/t-1");
    expect(fromV1alpha2(EksTaskSchema.parse(withMetadata({ prefix: "output", id: "t-1" }))).location).toBe("output/t-1");
  });

  it("says why a prefix is refused", () => {
    const message = (prefix: string) => EksTaskSchema.safeParse(withMetadata({ prefix })).error?.issues[0]?.message;
    expect(message("out/../victim-bucket")).toMatch(/\. or \.\. segment/);
    expect(message("/out")).toMatch(/empty segment/);
    expect(message("out/%2e%2e/x")).toMatch(/percent-encoded/);
  });

  it("takes SD-on-EKS's own directories, the names of the core's among them: its place in R2 is under the tenant's root", () => {
    for (const prefix of ["output", "outputs", "inputs", "comfy/acme/input", "a/b/c", "out/..x"]) expect(v2Issues({ prefix }), prefix).toBeUndefined();
    expect(v2Issues({ prefix: "outputs", id: RUN_ID })).toBeUndefined();
    const task = fromV1alpha2(EksTaskSchema.parse(withMetadata({ prefix: "outputs", id: RUN_ID })));
    expect(task.location).toBe(`outputs/${RUN_ID}`);
    expect(chosenOutputPrefix("globex", task.location)).toBe(`tenants/globex/outputs/${RUN_ID}`);
    // The tenant's name is one segment, whatever it holds.
    expect(chosenOutputPrefix("a/b", "x")).toBe("tenants/a%2Fb/x");
  });
});

describe("canonical job → SD-on-EKS answers", () => {
  const data = { id_task: "test-i2i", runtime: "sdruntime", context: { order: 7 } };

  it("notifies {id, result, image_url, output_url, context}", async () => {
    const note = await toEksNotification(env, snapshot({ dialect: "eks", dialect_data: data, output_prefix: "output/test-i2i" }));
    expect(Object.keys(note).sort()).toEqual(["context", "id", "image_url", "output_url", "result"]);
    expect(note).toMatchObject({ id: "test-i2i", result: true, context: { order: 7 } });
    // The .out beside the images, as a signed link (in R2 there is no s3:// object to name).
    expect(note.output_url).toMatch(/^http:\/\/gateway\.test\/v1\/outputs\/[A-Za-z0-9_-]+\.out\?expires=\d+&sig=/);
    expect(note.image_url).toHaveLength(2);
    const failed = await toEksNotification(env, snapshot({ status: "failed", dialect: "eks", dialect_data: data, output_prefix: "output/test-i2i" }));
    expect(failed).toMatchObject({ result: false, image_url: [] });
  });

  it("with S3 outputs, names the s3:// objects SD-on-EKS's queue agent writes: images from 1, the .out manifest", async () => {
    const s3_output = { bucket: "outs", prefix: "output/test-i2i", stem: "test-i2i-ab12" };
    const note = await toEksNotification(env, snapshot({ dialect: "eks", dialect_data: data, output_prefix: "output/test-i2i", s3_output }));
    expect(note).toEqual({
      id: "test-i2i",
      result: true,
      image_url: ["s3://outs/output/test-i2i/test-i2i-ab12-1.png", "s3://outs/output/test-i2i/test-i2i-ab12-2.png"],
      output_url: "s3://outs/output/test-i2i/test-i2i-ab12.out",
      context: { order: 7 },
    });
    const failed = await toEksNotification(env, snapshot({ status: "failed", dialect: "eks", dialect_data: data, s3_output }));
    expect(failed).toMatchObject({ result: false, image_url: [], output_url: "s3://outs/output/test-i2i/test-i2i-ab12.out" });
    expect((await toEksTask(env, snapshot({ dialect: "eks", dialect_data: data, s3_output }))).output_location).toBe("s3://outs/output/test-i2i");
  });

  it("writes the .out manifest as the queue agent does: parameters echoed with id_task and image_seed; the error on failure", () => {
    const { input } = snapshot({ dialect: "eks", dialect_data: { ...data, parameters: { prompt: "apple", steps: 20 } } });
    expect(eksManifest(input, { ok: true, outputs: [{ width: 512, height: 512, seed: 42 }, { width: 512, height: 512, seed: 43 }] })).toEqual({
      images: [""],
      parameters: { prompt: "apple", steps: 20, id_task: "test-i2i", image_seed: "42,43", error_msg: "" },
      info: "",
    });
    expect(eksManifest(input, { ok: false, message: "boom" })).toEqual({ images: [""], parameters: { id_task: "test-i2i", status: 0, error_msg: "boom", reason: null }, info: "" });
    const upscale = snapshot({ dialect: "eks", dialect_data: data, spec: { type: "upscale", upscale: { scale: 4, upscaler: "R-ESRGAN 4x+" } } }).input;
    expect(eksManifest(upscale, { ok: true, outputs: [{ width: 2048, height: 2048, seed: null }] }).parameters).toEqual({ html_info: "<p>Postprocess upscale to: 2048x2048, upscaler: R-ESRGAN 4x+</p>", id_task: "test-i2i", error_msg: "" });
  });

  it("answers GET with the status and a signed link per image", async () => {
    const task = await toEksTask(env, snapshot({ dialect: "eks", dialect_data: { ...data, location: "output/test-i2i" }, output_prefix: "tenants/acme/output/test-i2i" }));
    // The tenant's own view of its place: its root in the bucket is the gateway's business.
    expect(task).toMatchObject({ id_task: "test-i2i", runtime: "sdruntime", status: "succeeded", output_location: "r2://easel-images/output/test-i2i", run_id: RUN_ID, error: null });
    expect(task.images[0]).toMatch(/^http:\/\/gateway\.test\/v1\/outputs\//);
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

describe("s3:// link keys", () => {
  it("are refused as invalid_url, before S3 is asked, for any segment that walks elsewhere in any spelling, the bucket's included", async () => {
    // No S3 store configured: a link that passed the key check would be s3_not_configured instead.
    for (const [link, prefix] of [
      ["s3://inputs/bob/%2e%2e/alice/cat.png", "inputs/bob/"],
      ["s3://inputs/bob/%252e%252e/alice/cat.png", "inputs/bob/"],
      ["s3://inputs/bob/..\\alice\\cat.png", "inputs/bob/"],
      ["s3://inputs/bob/cat\u0000.png", "inputs/bob/"],
      ["s3://../inputs/bob/cat.png", "../inputs/bob/"],
    ] as const) {
      await expect(readS3Image(link, undefined, { field: "f", maxBytes: 1024, allowedPrefixes: [prefix] }), link).rejects.toMatchObject({ status: 422, code: "invalid_url", details: [{ path: "f" }] });
    }
  });
});

describe("/eks/v1/tasks inside the Worker", () => {
  it("takes x-api-key or Bearer, and answers errors as {message} with a 4xx", async () => {
    const anon = await call("/eks/v1/tasks", { headers: { "x-api-key": "nope" }, body: seed });
    expect(anon.status).toBe(401);
    expect(await anon.json()).toMatchObject({ message: expect.any(String) });
    const climbing = await call("/eks/v1/tasks", { headers: { authorization: "Bearer sk_acme_1" }, body: withMetadata({ prefix: "out/../victim" }) });
    expect(climbing.status).toBe(422);
    expect(await climbing.json()).toMatchObject({ errors: [{ path: "task.metadata.prefix" }] });
    const s3 = await call("/eks/v1/tasks", { headers: { "x-api-key": "sk_acme_1" }, body: { task: { ...seed.task, content: { ...seed.task.content, init_images: ["s3://inputs/cat.png"] } } } });
    expect(s3.status).toBe(422);
    expect(await s3.json()).toMatchObject({ errors: [{ path: "task.content.init_images.0" }] });
    const unknown = await call("/eks/v1/tasks/never-sent", { headers: { "x-api-key": "sk_acme_1" } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ message: "task never-sent not found" });
  });
});

describe("a task refused before its job exists", () => {
  it("leaves its id free: the corrected task is taken, not a 409", async () => {
    const task = (width: number) => ({ task: { metadata: { id: "fixed-after-422", runtime: "sdruntime", tasktype: "text-to-image", prefix: "output", context: "" }, content: { prompt: "x", steps: 1, width, height: 64 } } });
    const headers = { "x-api-key": "sk_acme_1" };
    const refused = await call("/eks/v1/tasks", { headers, body: task(4096) });
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({ errors: [{ path: "task.content.width" }] });
    const corrected = await call("/eks/v1/tasks", { headers, body: task(64) });
    expect(corrected.status).toBe(200);
    // Taken once: the id is the corrected task's now.
    expect((await call("/eks/v1/tasks", { headers, body: task(128) })).status).toBe(409);
  });
});

describe("output locations across accounts, in R2", () => {
  it("lets two accounts name the same location, or one inside the other's, each in its own place and neither told of the other", async () => {
    const task = (id: string, prefix: string) => ({ task: { metadata: { id, runtime: "sdruntime", tasktype: "text-to-image", prefix, context: "" }, content: { prompt: "x", steps: 1, width: 64, height: 64 } } });
    const acme = { "x-api-key": "sk_acme_1" };
    const globex = { "x-api-key": "sk_globex_1" };
    expect((await call("/eks/v1/tasks", { headers: acme, body: task("task-1", "shared-out") })).status).toBe(200);
    for (const [id, prefix] of [["task-1", "shared-out"], ["nested", "shared-out/task-1"]]) {
      const theirs = await call("/eks/v1/tasks", { headers: globex, body: task(id ?? "", prefix ?? "") });
      expect(theirs.status, prefix).toBe(200);
      expect(await theirs.json()).toMatchObject({ output_location: `r2://easel-images/${prefix}/${id}` });
    }
    expect((await call("/eks/v1/tasks", { headers: acme, body: task("mine", "shared-out/task-1") })).status).toBe(200);
  });
});

describe("storage keys at the routes, inside the Worker", () => {
  const objects = async () => (await env.IMAGES.list()).objects.map((o) => o.key).sort();

  it("answers a location whose output keys would pass S3's and R2's 1,024 bytes with a 422 naming its field, before any GPU runs, the id left free", async () => {
    const before = await objects();
    const headers = { "x-api-key": "sk_acme_1" };
    const long = `${"p".repeat(255)}/${"q".repeat(255)}`;
    for (const [path, body, field] of [
      ["/prod/v1alpha2", withMetadata({ id: "i".repeat(256), prefix: long, tasktype: "text-to-image" }), "task.metadata.prefix"],
      ["/prod/v1alpha1", { alwayson_scripts: { task: "text-to-image", id_task: "i".repeat(256), save_dir: long }, prompt: "A dog" }, "alwayson_scripts.save_dir"],
    ] as const) {
      const res = await call(path, { headers, body });
      expect(res.status, path).toBe(422);
      expect(await res.json()).toMatchObject({ message: expect.stringContaining("1024 bytes"), errors: [{ path: field }] });
    }
    expect(await objects()).toEqual(before);
    // The longest that fits is taken, and its id was not spent by the refusal above.
    const fits = await call("/prod/v1alpha2", { headers, body: { task: { metadata: { id: "i".repeat(256), runtime: "sdruntime", tasktype: "text-to-image", prefix: "p".repeat(400) }, content: { prompt: "x", steps: 1, width: 64, height: 64 } } } });
    expect(fits.status, await fits.clone().text()).toBe(200);
  });

  it("answers a prefix, save_dir or task id that walks out of its place with a 422 naming it, and writes nothing", async () => {
    const before = await objects();
    const headers = { "x-api-key": "sk_acme_1" };
    for (const [path, body, field] of [
      ["/eks/v1/tasks", withMetadata({ id: "walk-1", prefix: "out/../victim-bucket" }), "task.metadata.prefix"],
      ["/prod/v1alpha2", withMetadata({ id: "walk-2", prefix: "out/%2e%2e/victim-bucket" }), "task.metadata.prefix"],
      ["/prod/v1alpha2/", withMetadata({ id: "..", prefix: "output" }), "task.metadata.id"],
      ["/prod/v1alpha1", { alwayson_scripts: { task: "text-to-image", id_task: "walk-3", save_dir: "../victim-bucket" }, prompt: "A dog" }, "alwayson_scripts.save_dir"],
      ["/prod/v1alpha1/", { alwayson_scripts: { task: "text-to-image", id_task: "..", save_dir: "outputs" }, prompt: "A dog" }, "alwayson_scripts.id_task"],
    ] as const) {
      const res = await call(path, { headers, body });
      expect(res.status, `${path} ${field}`).toBe(422);
      expect(await res.json()).toMatchObject({ message: expect.stringContaining(field), errors: [{ path: field }] });
    }
    expect(await objects()).toEqual(before);
  });
});

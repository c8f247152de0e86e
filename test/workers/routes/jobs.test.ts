import { exports } from "cloudflare:workers";
import { listDurableObjectIds } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { base32, randomId } from "../../../src/lib/crypto";
import { jobObjects } from "../support/objects";

const call = (path: string, init: RequestInit & { key?: string } = {}) =>
  exports.default.fetch(
    new Request(`http://gateway.test${path}`, {
      ...init,
      headers: { ...(init.key ? { authorization: `Bearer ${init.key}` } : {}), "content-type": "application/json", ...(init.headers as Record<string, string> | undefined) },
    }),
  );

type ErrorBody = { error: { code: string; message: string; details?: { path: string; message: string }[] } };

describe("/v1/jobs inside the Worker", () => {
  it("queues a valid job (202) with a run id of 128 random bits, in the contract's shape", async () => {
    const res = await call("/v1/jobs", { method: "POST", key: "sk_acme_1", body: JSON.stringify({ type: "txt2img", prompt: "a cat", backend: "dead-a", track_id: "order-9" }) });
    expect(res.status).toBe(202);
    const job = (await res.json()) as Record<string, unknown>;
    expect(job).toMatchObject({ status: "queued", track_id: "order-9", output: [], error: null, backend: null, metrics: { queue_ms: expect.any(Number), run_ms: 0 } });
    expect(job.id).toMatch(/^run_[a-z2-7]{39}$/);
    expect(Number.isInteger(job.seed)).toBe(true);
    await jobObjects.get(jobObjects.idFromName(String(job.id))).cancel("acme");
  });

  it("answers an id it never minted with a 404 and creates no job object (reading does not write)", async () => {
    // Well formed before run ids carried a MAC, well formed now with a forged one, and a job's id with one character changed.
    const res = await call("/v1/jobs", { method: "POST", key: "sk_acme_1", body: JSON.stringify({ type: "txt2img", prompt: "a cat", backend: "dead-a" }) });
    const real = String(((await res.json()) as { id: string }).id);
    const altered = `${real.slice(0, 4)}${real[4] === "a" ? "b" : "a"}${real.slice(5)}`;
    const ids = [randomId("run"), `run_${base32(crypto.getRandomValues(new Uint8Array(24)))}`, altered];
    for (const id of ids) {
      for (const path of [`/v1/jobs/${id}`, `/v1/jobs/${id}/events`, `/v1/jobs/${id}/deliveries`]) {
        const got = await call(path, { key: "sk_acme_1" });
        expect(got.status).toBe(404);
        expect(((await got.json()) as ErrorBody).error.code).toBe("not_found");
      }
      expect((await call(`/v1/jobs/${id}/cancel`, { method: "POST", key: "sk_acme_1" })).status).toBe(404);
    }
    const objects = await listDurableObjectIds(jobObjects);
    for (const id of ids) expect(objects.some((o) => o.equals(jobObjects.idFromName(id)))).toBe(false);
    expect(objects.some((o) => o.equals(jobObjects.idFromName(real)))).toBe(true);
    await jobObjects.get(jobObjects.idFromName(real)).cancel("acme");
  });

  it("lists every bad field at once by path in a 422", async () => {
    const res = await call("/v1/jobs", { method: "POST", key: "sk_acme_1", body: JSON.stringify({ type: "txt2img", prompt: "", width: "512", samples: 9 }) });
    expect(res.status).toBe(422);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe("validation_failed");
    expect(body.error.details?.map((d) => d.path).sort()).toEqual(["prompt", "samples", "width"]);
  });

  it("answers malformed JSON with 400, a missing key with 401, both as JSON", async () => {
    const bad = await call("/v1/jobs", { method: "POST", key: "sk_acme_1", body: "{" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as ErrorBody).error.code).toBe("malformed_json");
    const anon = await call("/v1/jobs", { method: "POST", body: "{}" });
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as ErrorBody).error.code).toBe("unauthorized");
  });

  it("reads a JSON body sent without a JSON Content-Type (curl -d) instead of seeing none", async () => {
    const res = await exports.default.fetch(
      new Request("http://gateway.test/v1/jobs", {
        method: "POST",
        headers: { authorization: "Bearer sk_acme_1", "content-type": "application/x-www-form-urlencoded" },
        body: JSON.stringify({ type: "txt2img", prompt: "a cat", backend: "dead-a", width: "512" }),
      }),
    );
    expect(res.status).toBe(422);
    expect(((await res.json()) as ErrorBody).error.details?.map((d) => d.path)).toEqual(["width"]);
  });

  it("serves the OpenAPI document with the job routes", async () => {
    const doc = (await (await call("/openapi.json")).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/cancel", "/v1/jobs/{id}/events", "/healthz"]));
    expect(Object.keys(doc.paths)).not.toContain("/internal/callbacks/{id}/{attempt}/{token}");
  });

  it("documents workflow jobs: the graph and images in the request, node_id on outputs, node on progress", async () => {
    type Props = { properties: Record<string, { description?: string; items?: Props }> };
    const doc = (await (await call("/openapi.json")).json()) as { components: { schemas: Record<string, Props> } };
    const { JobRequest, Job, JobProgress } = doc.components.schemas;
    expect(JobRequest?.properties.workflow?.description).toContain("ComfyUI API-format graph");
    expect(JobRequest?.properties.images).toBeDefined();
    expect(Job?.properties.output?.items?.properties.node_id?.description).toContain("node");
    expect(JobProgress?.properties.node).toBeDefined();
  });
});

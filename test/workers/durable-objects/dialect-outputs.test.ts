import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { writeDialectOutputs } from "../../../durable-objects/job/dialect-outputs";
import type { StoredOutput } from "../../../durable-objects/job/tables";
import { registerManifestRenderers } from "../../../src/dialects/manifests";
import { randomId } from "../../../src/lib/crypto";
import { snapshot } from "../dialects/support";
import { hangingCalls as calls } from "../support/jobs";

registerManifestRenderers();

/** The test server (global-setup) stands in for the operator's S3 store: bucket `flaky` takes each key's PUT at its second try. */
const withStore = { ...env, S3_ENDPOINT: inject("hangingBackendUrl"), S3_REGION: "us-east-1", S3_ACCESS_KEY_ID: "AKIDEXAMPLE", S3_SECRET_ACCESS_KEY: "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY" };

/** An SD-on-EKS task's two outputs, in R2, to be written to S3 under a place of their own. */
async function task() {
  const id = randomId("t");
  const s3_output = { bucket: "flaky", prefix: `output/${id}`, stem: `${id}-ab12` };
  const { input } = snapshot({ dialect: "eks", dialect_data: { id_task: id, runtime: "sdruntime", context: "" }, output_prefix: `tenants/acme/output/${id}`, s3_output });
  const outputs: StoredOutput[] = [0, 1].map((i) => ({ key: `tenants/acme/output/${id}/image_${i}.png`, content_type: "image/png", width: 8, height: 8, seed: 42 + i }));
  for (const o of outputs) await env.IMAGES.put(o.key, new Uint8Array([137, 80, 78, 71]));
  const put = (name: string) => calls(`/flaky/output/${id}/${name}`);
  return { id, input, outputs, put };
}

describe("a task's outputs written to S3", () => {
  it("stop once the job ended otherwise (a cancel while they were written): no more images, and no success manifest", async () => {
    const t = await task();
    let checks = 0;
    // The cancel lands once the first image is on its way.
    await writeDialectOutputs(withStore, t.input, t.outputs, () => (checks++ === 0 ? undefined : "canceled"));
    expect(await t.put(`${t.id}-ab12-1.png`)).toBeGreaterThan(0);
    expect(await t.put(`${t.id}-ab12-2.png`)).toBe(0);
    expect(await t.put(`${t.id}-ab12.out`)).toBe(0);
  });

  it("write the ended job's manifest last when it ended during the success manifest's write", async () => {
    const t = await task();
    let checks = 0;
    // Ended after the last check before the manifest: the success manifest goes, then the end's over it.
    await writeDialectOutputs(withStore, t.input, t.outputs, () => (checks++ < 3 ? undefined : "canceled"));
    // The success manifest took two PUTs (the stand-in's first answer is a 503), the end's one more, after it.
    expect(await t.put(`${t.id}-ab12.out`)).toBe(3);
  });
});

import { describe, expect, inject, it } from "vitest";
import { BRIEF_EFFORT, putS3Object } from "../../../src/storage/s3-output";
import { hangingCalls as calls } from "../support/jobs";

/** The test server (global-setup) stands in for the S3 store: `flaky` fails each key's first PUT, `gone` every one. */
const store = { endpoint: inject("hangingBackendUrl"), region: "us-east-1", accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY" };

describe("outputs written to S3", () => {
  it("try a PUT the store failed with a 5xx again (aws4fetch's retries): it is idempotent, and the generation behind it is paid for", async () => {
    await putS3Object(store, "flaky", "out/task-1/task-1-ab12-1.png", new Uint8Array([1, 2, 3]), "image/png");
    expect(await calls("/flaky/out/task-1/task-1-ab12-1.png")).toBe(2);
  });

  it("do not try again a PUT the store refused (a 4xx), and name the answer without the store's credentials", async () => {
    const put = putS3Object(store, "gone", "out/task-2/task-2-ab12-1.png", "x", "image/png");
    await expect(put).rejects.toThrow(/answered 404/);
    await expect(put).rejects.not.toThrow(/AKIDEXAMPLE|wJalrXUtnFEMIK7MDENG/);
    expect(await calls("/gone/out/task-2/task-2-ab12-1.png")).toBe(1);
  });

  it("try a best-effort write (a failure manifest, on a cancel's way) once only", async () => {
    await expect(putS3Object(store, "flaky", "out/task-3/task-3-ab12.out", "{}", "application/json", BRIEF_EFFORT)).rejects.toThrow(/answered 503/);
    expect(await calls("/flaky/out/task-3/task-3-ab12.out")).toBe(1);
  });
});

import { describe, expect, inject, it } from "vitest";
import { readA1111Progress } from "../../../src/backends/a1111-progress";
import { BackendSchema } from "../../../src/config/schema";

const backend = BackendSchema.parse({ name: "a1111", kind: "a1111", url: inject("hangingBackendUrl") });
const read = (taskId: string) => readA1111Progress(backend, { taskId, image: true, signal: AbortSignal.timeout(5000) });

describe("an A1111 task's live progress", () => {
  it("reads the backend's figures and preview while the task is the active one", async () => {
    const reading = await read(`running-${crypto.randomUUID()}`);
    expect(reading).toMatchObject({ progress: { steps: 20, job: "scripts_img2img", eta_s: 3 }, image: "cHJldmlldw==" });
  });

  it("shows nothing read while the task ended: A1111's figures and preview would be of what runs next there", async () => {
    expect(await read(`ending-${crypto.randomUUID()}`)).toBeUndefined();
  });
});

import { describe, expect, it } from "vitest";
import { cerebriumAuthorization, cerebriumBody, cerebriumOutcome, verifyCerebriumSignature } from "../../../src/backends/cerebrium";
import type { GenerationSpec } from "../../../src/jobs/spec";
import { hex, hmacSha256 } from "../../../src/lib/crypto";
import { textStream } from "../../../src/lib/json-stream";
import { answerOf, sent } from "./support";

const outcome = async (json: unknown, samples: number) => cerebriumOutcome(await answerOf(json, ["result"]), samples);

const spec: GenerationSpec = { type: "img2img", prompt: "an astronaut", negative_prompt: "", strength: 0.6, steps: 50, guidance_scale: 7.5, width: 512, height: 512, samples: 2, seed: 120 };

describe("Cerebrium translation", () => {
  it("sends seed 004's fields", async () => {
    expect(await sent(cerebriumBody(spec, new Uint8Array([1, 2, 3])))).toMatchObject({
      prompt: "an astronaut",
      image: "AQID",
      num_inference_steps: 50,
      guidance_scale: 7.5,
      num_images_per_prompt: 2,
      negative_prompt: "",
      seed: 120,
    });
  });

  it("sends the key as v4's Bearer token, and as it is to seed 004's run.cerebrium.ai", () => {
    expect(cerebriumAuthorization("https://api.aws.us-east-1.cerebrium.ai/v4/p-1234/sd-img-2-img/predict", "eyJ.jwt")).toBe("Bearer eyJ.jwt");
    expect(cerebriumAuthorization("https://api.aws.us-east-1.cerebrium.ai/v4/p-1234/sd-img-2-img/predict", "Bearer eyJ.jwt")).toBe("Bearer eyJ.jwt");
    expect(cerebriumAuthorization("https://run.cerebrium.ai/sd-img-2-img-webhook/predict", "c_key")).toBe("c_key");
  });

  it("reads result as the images and refuses a missing or short result", async () => {
    expect((await outcome({ run_id: "r", message: "Successfully generated image", result: [btoa("a"), btoa("b")] }, 2)).kind).toBe("done");
    expect(await outcome({ run_id: "r", message: "CUDA out of memory", result: null }, 1)).toMatchObject({ kind: "failed", failure: { code: "out_of_memory" } });
    expect(await outcome({ run_id: "r", message: "ok", result: [btoa("a")] }, 2)).toMatchObject({ kind: "failed" });
  });

  it("accepts a callback only with a valid signature over request id, timestamp and body", async () => {
    const body = JSON.stringify({ run_id: "r1", result: [] });
    const sig = `v1,${hex(await hmacSha256("per-attempt-secret", `r1.1700000000.${body}`))}`;
    const headers = (signature: string) => new Headers({ "x-cerebrium-request-id": "r1", "x-cerebrium-webhook-timestamp": "1700000000", "x-cerebrium-webhook-signature": signature });
    expect(await verifyCerebriumSignature("per-attempt-secret", headers(sig), textStream(body))).toBe(true);
    expect(await verifyCerebriumSignature("other-secret", headers(sig), textStream(body))).toBe(false);
    expect(await verifyCerebriumSignature("per-attempt-secret", headers(sig), textStream(body + " "))).toBe(false);
    expect(await verifyCerebriumSignature("per-attempt-secret", new Headers(), textStream(body))).toBe(false);
    const documented = new Headers({ "x-request-id": "r1", "x-cerebrium-webhook-timestamp": "1700000000", "x-cerebrium-webhook-signature": sig });
    expect(await verifyCerebriumSignature("per-attempt-secret", documented, textStream(body))).toBe(true);
  });
});

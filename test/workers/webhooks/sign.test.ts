import { describe, expect, it } from "vitest";
import { textStream } from "../../../src/lib/json-stream";
import { signatureHeader } from "../../../src/webhooks/sign";

describe("Standard Webhooks signing", () => {
  it("matches the specification's published test vector", async () => {
    const header = await signatureHeader(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}');
    expect(header).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("signs once per secret, space-separated, so old and new secrets both verify during rotation", async () => {
    const other = "whsec_" + btoa("another secret of some length!!");
    const header = await signatureHeader(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", other], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}');
    const parts = header.split(" ");
    expect(parts).toHaveLength(2);
    expect(parts[0]).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    expect(parts[1]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(parts[1]).not.toBe(parts[0]);
  });

  it("changes with the timestamp, so every retry carries a fresh signature", async () => {
    const a = await signatureHeader(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "msg_1", 1000, "{}");
    const b = await signatureHeader(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "msg_1", 1001, "{}");
    expect(a).not.toBe(b);
  });

  it("signs a streamed body exactly as the same body in one string, for short and long keys", async () => {
    const body = JSON.stringify({ images: ["A".repeat(300_000)], prompt: "é" });
    const long = "whsec_" + btoa("k".repeat(100));
    const secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", long];
    const streamed = { length: new TextEncoder().encode(body).byteLength, open: () => textStream(body) };
    expect(await signatureHeader(secrets, "msg_1", 1000, streamed)).toBe(await signatureHeader(secrets, "msg_1", 1000, body));
  });
});

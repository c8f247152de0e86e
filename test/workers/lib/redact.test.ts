import { describe, expect, it } from "vitest";
import { redact } from "../../../src/lib/redact";

describe("redact", () => {
  it("strips credentials from URLs and the backend's own secrets, and truncates", () => {
    expect(redact("GET http://admin:hunter2@10.0.0.5/x failed")).toBe("GET http://***@10.0.0.5/x failed");
    expect(redact("token rp_SECRETKEY123 refused", ["rp_SECRETKEY123"])).toBe("token *** refused");
    expect(redact("x".repeat(10_000))).toHaveLength(300);
  });
});

import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { mintRunId } from "../../../src/jobs/run-id";

describe("POST /internal/callbacks/{id}/{attempt}/{token}", () => {
  it("answers 404 to an attempt number the gateway never issues, whatever its spelling, as to any callback it did not issue", async () => {
    const id = await mintRunId(env);
    for (const attempt of ["0", "-1", "abc", "1.5", "%20", "01", "99999999999999999999"]) {
      const res = await exports.default.fetch(new Request(`http://gateway.test/internal/callbacks/${id}/${attempt}/forged`, { method: "POST", body: "{}" }));
      expect(res.status, attempt).toBe(404);
    }
    expect((await exports.default.fetch(new Request(`http://gateway.test/internal/callbacks/${id}/1/forged`, { method: "POST", body: "{}" }))).status).toBe(404);
  });
});

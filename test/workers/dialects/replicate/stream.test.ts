import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { streamUrl } from "../../../../src/dialects/replicate/stream";
import { RUN_ID, call } from "../support";

const path = (url: string) => url.replace("http://gateway.test", "");

describe("Replicate stream links", () => {
  it("are signed for one tenant and one prediction: another tenant, id or expiry is a 403 problem", async () => {
    const url = new URL(await streamUrl(env, "http://gateway.test", "acme", RUN_ID));
    expect(url.pathname).toBe(`/v1/files/${RUN_ID}/stream`);
    const forge = (name: string, value: string) => {
      const u = new URL(url);
      u.searchParams.set(name, value);
      return path(u.toString());
    };
    for (const forged of [forge("tenant", "globex"), forge("expires", String(Number(url.searchParams.get("expires")) + 60)), forge("sig", "AAAA"), path(url.toString()).replace(RUN_ID, `${RUN_ID.slice(0, -1)}a`)]) {
      const res = await call(forged);
      expect(res.status).toBe(403);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
    }
  });

  it("an expired link is a 403", async () => {
    const res = await call(path(await streamUrl(env, "http://gateway.test", "acme", RUN_ID, Date.now() - 8 * 24 * 3600_000)));
    expect(res.status).toBe(403);
  });

  it("a valid link to a prediction that does not exist is a 404", async () => {
    const res = await call(path(await streamUrl(env, "http://gateway.test", "acme", RUN_ID)));
    expect(res.status).toBe(404);
  });
});

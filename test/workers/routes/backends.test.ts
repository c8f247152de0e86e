import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

type View = { name: string; kind: string; models: string[]; types: string[]; max_concurrency: number; active: number; waiting: number; circuit: string; open_until: string | null; recent: { jobs: number } };

describe("GET /v1/backends inside the Worker", () => {
  it("shows every configured backend's load and health, never its URL", async () => {
    const res = await exports.default.fetch(new Request("http://gateway.test/v1/backends", { headers: { authorization: "Bearer sk_acme_1" } }));
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain("127.0.0.1");
    const { data } = JSON.parse(text) as { data: View[] };
    expect(data.map((b) => b.name)).toEqual(["dead-a", "dead-b", "hang", "busy-a", "busy-b"]);
    expect(data[2]).toMatchObject({ kind: "a1111", types: ["img2img"], max_concurrency: 100, circuit: expect.stringMatching(/^(closed|open|half_open)$/) });
    for (const b of data) expect(Object.keys(b).sort()).toEqual(["active", "circuit", "kind", "max_concurrency", "models", "name", "open_until", "recent", "requests", "types", "waiting"]);
  });

  it("needs an API key", async () => {
    expect((await exports.default.fetch(new Request("http://gateway.test/v1/backends"))).status).toBe(401);
  });
});

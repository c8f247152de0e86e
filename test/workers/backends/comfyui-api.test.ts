import { describe, expect, it } from "vitest";
import { clientIdOf, comfyHeaders, promptIdOf } from "../../../src/backends/comfyui-api";
import { BackendSchema } from "../../../src/config/schema";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("ComfyUI ids and auth", () => {
  it("derives the attempt's prompt_id and client id as lowercase UUIDs, the same every time, different per attempt", async () => {
    const [a, again, next, client] = await Promise.all([promptIdOf("run_x-1"), promptIdOf("run_x-1"), promptIdOf("run_x-2"), clientIdOf("run_x-1")]);
    expect(a).toMatch(UUID);
    expect(client).toMatch(UUID);
    expect(again).toBe(a);
    expect(next).not.toBe(a);
    expect(client).not.toBe(a);
  });

  it("sends Basic auth for a username or password, else the key as Bearer, else nothing", () => {
    const parse = (extra: Record<string, string>) => BackendSchema.parse({ name: "c", kind: "comfyui", url: "http://c:8188", ...extra });
    expect(comfyHeaders(parse({ username: "u", password: "p" }))).toEqual({ authorization: `Basic ${btoa("u:p")}` });
    expect(comfyHeaders(parse({ api_key: "k" }))).toEqual({ authorization: "Bearer k" });
    expect(comfyHeaders(parse({}))).toEqual({});
  });
});

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signedOutputUrl } from "../../../src/storage/links";
import { ownOutputs } from "../../../src/storage/own-links";

const BASE = "https://easel.example";

describe("the gateway's own output links as inputs", () => {
  it("reads a valid link's image from R2; refuses a tampered or expired one; leaves every other URL to the network", async () => {
    await env.IMAGES.put("outputs/run_own/image_0.png", new Uint8Array([1, 2, 3]));
    const own = ownOutputs(env, BASE);
    const link = await signedOutputUrl(BASE, "test-signing-secret", "outputs/run_own/image_0.png");
    expect(await own(link)).toEqual(new Uint8Array([1, 2, 3]));
    expect(await own(link.replace(/sig=./, "sig=x"))).toBeNull();
    expect(await own(await signedOutputUrl(BASE, "test-signing-secret", "outputs/run_own/image_0.png", Date.now() - 30 * 24 * 3600_000))).toBeNull();
    // Signed for another key than the one it names: another tenant's image is never read this way.
    expect(await own(link.replace(/outputs\/[^?]+/, `outputs/${btoa("outputs/run_other/image_0.png").replace(/=+$/, "")}.png`))).toBeNull();
    expect(await own("https://elsewhere.example/v1/outputs/x.png")).toBeUndefined();
    // Only what the outputs route would serve: one segment, one expires and one sig.
    expect(await own(link.replace("/v1/outputs/", "/v1/outputs/zzz/"))).toBeNull();
    expect(await own(`${link}&sig=other`)).toBeNull();
    // A malformed escape is a refused link, never an error.
    expect(await own(`${BASE}/v1/outputs/%E0%A4%A.png?expires=1&sig=x`)).toBeNull();
  });
});

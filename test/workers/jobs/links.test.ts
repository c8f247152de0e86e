import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { fetchLinks } from "../../../src/jobs/links";
import { bytesToBase64 } from "../../../src/lib/base64";
import { signedOutputUrl } from "../../../src/storage/links";

const PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

describe("SD-on-EKS links in a task", () => {
  it("reads one of the gateway's own output links from R2, not over the network; a tampered one is a 422 naming its field", async () => {
    const png = Uint8Array.from(atob(PNG_B64), (c) => c.charCodeAt(0));
    await env.IMAGES.put("outputs/run_eks_chain/image_0.png", png);
    const link = await signedOutputUrl("http://gateway.test", "test-signing-secret", "outputs/run_eks_chain/image_0.png");
    const content = await fetchLinks(env, "acme", { prompt: "refine", alwayson_scripts: { image_link: link } }, "task.content.", "http://gateway.test");
    expect(content).toEqual({ prompt: "refine", alwayson_scripts: { image_link: bytesToBase64(png) } });
    const tampered = fetchLinks(env, "acme", { alwayson_scripts: { image_link: link.replace(/sig=./, "sig=x") } }, "task.content.", "http://gateway.test");
    await expect(tampered).rejects.toMatchObject({ status: 422, details: [{ path: "task.content.alwayson_scripts.image_link" }] });
  });
});

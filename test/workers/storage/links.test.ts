import { describe, expect, it } from "vitest";
import { outputKeyFromPath, signedOutputUrl, verifyOutputLink } from "../../../src/storage/links";

/** The key, expiry and signature of a link as the output route reads them. */
function parts(link: string) {
  const url = new URL(link);
  const file = url.pathname.split("/").at(-1) ?? "";
  return { key: outputKeyFromPath(file) ?? "", expires: url.searchParams.get("expires") ?? "", sig: url.searchParams.get("sig") ?? "" };
}

describe("output links across a key rotation", () => {
  it("verifies a link signed with the old key while the old key is still listed, and not after it is dropped", async () => {
    const { key, expires, sig } = parts(await signedOutputUrl("http://gateway.test", "old", "outputs/run_x/0.png"));
    expect(key).toBe("outputs/run_x/0.png");
    expect(await verifyOutputLink(["old"], key, expires, sig)).toBe(true);
    expect(await verifyOutputLink(["new", "old"], key, expires, sig)).toBe(true);
    expect(await verifyOutputLink(["new"], key, expires, sig)).toBe(false);
  });

  it("lasts while its job is kept when that is longer than the link's week, and no longer", async () => {
    const now = Date.now();
    const keptUntil = now + 30 * 24 * 3600_000;
    const { key, expires, sig } = parts(await signedOutputUrl("http://gateway.test", "k", "outputs/run_x/0.png", now, keptUntil));
    expect(Number(expires)).toBe(Math.floor(keptUntil / 1000));
    expect(await verifyOutputLink(["k"], key, expires, sig, now + 29 * 24 * 3600_000)).toBe(true);
    expect(await verifyOutputLink(["k"], key, expires, sig, keptUntil + 1000)).toBe(false);
    // A job kept less than a week (a short RETENTION_S) still gets the week: its images are gone by then (404).
    const short = parts(await signedOutputUrl("http://gateway.test", "k", "outputs/run_x/0.png", now, now + 3600_000));
    expect(Number(short.expires)).toBe(Math.floor(now / 1000) + 7 * 24 * 3600);
  });

  it("still refuses an expired link, whichever key signed it", async () => {
    const issued = Date.now() - 8 * 24 * 3600_000;
    const { key, expires, sig } = parts(await signedOutputUrl("http://gateway.test", "old", "outputs/run_x/0.png", issued));
    expect(await verifyOutputLink(["new", "old"], key, expires, sig)).toBe(false);
  });
});

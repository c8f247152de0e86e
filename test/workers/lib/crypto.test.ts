import { describe, expect, it } from "vitest";
import { base32, base32Decode, canonicalJson, hex, hmacSha256, randomId, timingSafeEqual } from "../../../src/lib/crypto";

describe("crypto helpers", () => {
  it("makes ids of 128 random bits in base32, never twice", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => randomId("cb")));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^cb_[a-z2-7]{26}$/);
  });

  it("reads base32 back only in the one spelling base32 writes", () => {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    const text = base32(bytes);
    expect(base32Decode(text)).toEqual(bytes);
    // 24 bytes leave 3 unused bits in the last character: set, they would make a second spelling.
    expect(base32Decode(text.slice(0, -1) + "7")).toBeUndefined();
    expect(base32Decode(`${text}aa`)).toBeUndefined();
    expect(base32Decode(text.toUpperCase())).toBeUndefined();
  });

  it("compares equal JSON bodies equal whatever their key order", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } })).toBe(canonicalJson({ a: { c: null, d: [1, { x: 1, y: 2 }] }, b: 1 }));
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: "1" }));
  });

  it("compares secrets of any length without throwing", () => {
    expect(timingSafeEqual("abc", "abc")).toBe(true);
    expect(timingSafeEqual("abc", "abd")).toBe(false);
    expect(timingSafeEqual("abc", "abcd")).toBe(false);
  });

  it("signs with the key it is given when keys are kept imported under the strings they came from", async () => {
    // RFC 4231 test case 2: key "Jefe".
    const expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    const data = "what do ya want for nothing?";
    const jefe = new TextEncoder().encode("Jefe");
    expect(hex(await hmacSha256("Jefe", data))).toBe(expected);
    expect(hex(await hmacSha256(jefe, data, "whsec_SmVmZQ=="))).toBe(expected);
    // A configured string that names other bytes never lends them its key, nor the other way round.
    const other = new TextEncoder().encode("not Jefe");
    expect(hex(await hmacSha256(other, data, "Jefe"))).not.toBe(expected);
    expect(hex(await hmacSha256(other, data, "Jefe"))).toBe(hex(await hmacSha256(other, data)));
    expect(hex(await hmacSha256("Jefe", data))).toBe(expected);
  });
});

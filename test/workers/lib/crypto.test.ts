import { describe, expect, it } from "vitest";
import { canonicalJson, randomId, timingSafeEqual } from "../../../src/lib/crypto";

describe("crypto helpers", () => {
  it("makes run ids of 128 random bits in base32, never twice", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => randomId("run")));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^run_[a-z2-7]{26}$/);
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
});

import { describe, expect, it } from "vitest";
import { nestsDeeperThan } from "../../../src/lib/json-depth";

const nested = (levels: number, open = "[", close = "]") => open.repeat(levels) + close.repeat(levels);

describe("nestsDeeperThan", () => {
  it("counts arrays and objects inside one another, not side by side", () => {
    expect(nestsDeeperThan(nested(128), 128)).toBe(false);
    expect(nestsDeeperThan(nested(129), 128)).toBe(true);
    expect(nestsDeeperThan(nested(100, "{\"a\":", "}").replace("{\"a\":}", "{}"), 128)).toBe(false);
    // Two hundred siblings, one level each.
    expect(nestsDeeperThan(JSON.stringify({ list: Array.from({ length: 200 }, (_, i) => ({ i, inner: [i] })) }), 128)).toBe(false);
    expect(nestsDeeperThan(JSON.stringify({ a: JSON.parse(nested(150)) as unknown }), 128)).toBe(true);
  });

  it("reads brackets inside strings as text, escaped quotes included", () => {
    const text = JSON.stringify({ prompt: "[".repeat(500) + '\\"{'.repeat(300), image: "A".repeat(100_000) });
    expect(nestsDeeperThan(text, 128)).toBe(false);
  });
});

describe("nestsDeeperThan on hostile text", () => {
  it("reads an unterminated run of escaped quotes behind many brackets in one pass (a scan per quote would not end within the test's time)", () => {
    const quotes = '"' + '\\"'.repeat(2_000_000);
    expect(nestsDeeperThan("[]".repeat(129) + quotes, 128)).toBe(false);
    expect(nestsDeeperThan("[".repeat(129) + quotes, 128)).toBe(true);
    // Runs of backslashes: an even run leaves the quote after it closing the string.
    expect(nestsDeeperThan(`["${"\\\\".repeat(1000)}", ${"[".repeat(129)}${"]".repeat(129)}]`, 128)).toBe(true);
  });
});

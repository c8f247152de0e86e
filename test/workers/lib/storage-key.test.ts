import { describe, expect, it } from "vitest";
import { keyPathProblem, keySegmentProblem } from "../../../src/lib/storage-key";

/** Each would reach outside its place once in a URL or a key, in plain or percent-encoded form. */
const REFUSED_PATHS = [
  "..",
  ".",
  "out/../victim-bucket",
  "out/./x",
  "out/..",
  "../../victim-bucket",
  "/abs",
  "trailing/",
  "a//b",
  "",
  "a\\..\\b",
  "a/b\\c",
  "a/\u0000b",
  "a/b\nc",
  "a/\u001fb",
  "a/\u007fb",
  "out/%2e%2e/victim-bucket",
  "out/%2E%2e/victim-bucket",
  "out/.%2e/victim-bucket",
  "out%2f..%2fvictim-bucket",
  "out%2F%2E%2E",
  "a%5c..",
  "a%5Cb",
  "a%00b",
  "a%0ab",
  "a%7fb",
  "out/%252e%252e/victim-bucket",
  "a%25b",
];

const ALLOWED_PATHS = ["output", "outputs", "a/b/c", "out/..x/y", "out/x../y", "a.b/c-d_e", "...", "a%20b", "k%3d1", "日本/語"];

describe("keyPathProblem", () => {
  it.each(REFUSED_PATHS)("refuses %j", (path) => {
    expect(keyPathProblem(path)).toEqual(expect.any(String));
  });

  it.each(ALLOWED_PATHS)("takes %j", (path) => {
    expect(keyPathProblem(path)).toBeUndefined();
  });

  it("says which rule the path broke", () => {
    expect(keyPathProblem("a//b")).toMatch(/empty segment/);
    expect(keyPathProblem("out/../x")).toMatch(/\. or \.\. segment/);
    expect(keyPathProblem("a\\b")).toMatch(/backslash/);
    expect(keyPathProblem("a\u0001")).toMatch(/control character/);
    expect(keyPathProblem("%2e%2e")).toMatch(/percent-encoded/);
  });
});

describe("keySegmentProblem", () => {
  it("takes one plain segment only: a / anywhere, or any refused segment, is a problem", () => {
    expect(keySegmentProblem("test-t2i")).toBeUndefined();
    expect(keySegmentProblem("a:b.c")).toBeUndefined();
    for (const bad of ["a/b", "/a", "a/", "..", ".", "", "%2e%2e", "a%2fb", "a\\b", "a\u0000"]) expect(keySegmentProblem(bad), bad).toEqual(expect.any(String));
  });
});

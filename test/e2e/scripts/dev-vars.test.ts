import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ensureDevVars, readDotenv, writePrivateEnvFile } from "../../../scripts/dev-vars";

const ROOT = resolve(import.meta.dirname, "../../..");
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A checkout as `npm start` first sees it: the example, no .dev.vars. */
function freshCheckout(): string {
  const dir = mkdtempSync(join(tmpdir(), "easel-devvars-"));
  dirs.push(dir);
  copyFileSync(join(ROOT, ".dev.vars.example"), join(dir, ".dev.vars.example"));
  return dir;
}

const mode = (file: string) => statSync(file).mode & 0o777;

describe("npm start's .dev.vars", () => {
  it("is created on first start with a random URL_SIGNING_SECRET of its own, readable by its owner only", () => {
    const keys = [freshCheckout(), freshCheckout()].map((dir) => {
      expect(ensureDevVars(dir, {})).toEqual({ copied: true, keyWritten: true });
      const file = join(dir, ".dev.vars");
      expect(readDotenv(file, "TENANTS")).toContain("sk_demo_123");
      expect(mode(file)).toBe(0o600);
      return readDotenv(file, "URL_SIGNING_SECRET") ?? "";
    });
    expect(keys[0]).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // No key shipped with the code: each checkout gets its own.
    expect(keys[0]).not.toBe(keys[1]);
    expect(readFileSync(join(ROOT, ".dev.vars.example"), "utf8")).not.toMatch(/^URL_SIGNING_SECRET=/m);
  });

  it("keeps a key once written, appends one to a .dev.vars without, and writes none when the environment gives one", () => {
    const dir = freshCheckout();
    ensureDevVars(dir, {});
    const file = join(dir, ".dev.vars");
    const first = readDotenv(file, "URL_SIGNING_SECRET");
    expect(ensureDevVars(dir, {})).toEqual({ copied: false, keyWritten: false });
    expect(readDotenv(file, "URL_SIGNING_SECRET")).toBe(first);

    // Made by hand, world-readable: once it holds the key, only its owner reads it.
    writeFileSync(file, "TENANTS='{}'", { mode: 0o644 });
    chmodSync(file, 0o644);
    expect(ensureDevVars(dir, {}).keyWritten).toBe(true);
    expect(readFileSync(file, "utf8")).toMatch(/^TENANTS='\{\}'\nURL_SIGNING_SECRET=[A-Za-z0-9_-]{43}\n$/);
    expect(mode(file)).toBe(0o600);

    const configured = freshCheckout();
    expect(ensureDevVars(configured, { TENANTS: "{}", URL_SIGNING_SECRET: "from-env" })).toEqual({ copied: false, keyWritten: false });
  });

  it("creates .dev.vars holding only the key when the environment configures the tenants", () => {
    const dir = freshCheckout();
    expect(ensureDevVars(dir, { TENANTS: "{}" })).toEqual({ copied: false, keyWritten: true });
    const file = join(dir, ".dev.vars");
    expect(readFileSync(file, "utf8")).toMatch(/^URL_SIGNING_SECRET=[A-Za-z0-9_-]{43}\n$/);
    expect(mode(file)).toBe(0o600);
  });
});

describe("the env file that carries the environment's variables to wrangler dev", () => {
  it("is readable by its owner only, quotes each value so it reads back whole, and goes away", () => {
    const { path, remove } = writePrivateEnvFile({ URL_SIGNING_SECRET: "new,old", TENANTS: '{"a":{"api_keys":["it\'s"]}}' });
    try {
      expect(mode(path)).toBe(0o600);
      expect(readFileSync(path, "utf8")).toBe(`URL_SIGNING_SECRET='new,old'\nTENANTS=\`{"a":{"api_keys":["it's"]}}\`\n`);
    } finally {
      remove();
    }
    expect(() => statSync(path)).toThrow();
  });
});

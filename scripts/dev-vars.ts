/**
 * The local configuration files of `npm start`: `.dev.vars` made on first start, with a signing
 * key of its own, and the private env file that carries variables from the environment to
 * `wrangler dev` (never its command line, which `ps` shows to every user).
 */
import { randomBytes } from "node:crypto";
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Only the owner reads these files: they hold keys. */
const PRIVATE = 0o600;

/** A variable's value in a dotenv file, or undefined when the file does not set it. */
export function readDotenv(file: string, name: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const line = readFileSync(file, "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}=`));
  return line?.slice(name.length + 1).replace(/^(['"`])(.*)\1$/, "$2");
}

/** A fresh URL_SIGNING_SECRET: 256 random bits. */
export const newSigningSecret = (): string => randomBytes(32).toString("base64url");

export interface DevVarsResult {
  /** `.dev.vars` was copied from `.dev.vars.example`. */
  copied: boolean;
  /** A random URL_SIGNING_SECRET was written into `.dev.vars`. */
  keyWritten: boolean;
}

/**
 * First start in `dir`: `.dev.vars` from the example (unless the environment configures tenants),
 * and a random URL_SIGNING_SECRET in it (created or appended) unless one is configured already.
 */
export function ensureDevVars(dir: string, environment: NodeJS.ProcessEnv): DevVarsResult {
  const file = join(dir, ".dev.vars");
  let copied = false;
  if (!existsSync(file) && !environment.TENANTS) {
    copyFileSync(join(dir, ".dev.vars.example"), file);
    chmodSync(file, PRIVATE);
    copied = true;
  }
  if (environment.URL_SIGNING_SECRET?.trim() || readDotenv(file, "URL_SIGNING_SECRET")?.trim()) return { copied, keyWritten: false };
  const line = `URL_SIGNING_SECRET=${newSigningSecret()}\n`;
  if (existsSync(file)) {
    const text = readFileSync(file, "utf8");
    appendFileSync(file, text === "" || text.endsWith("\n") ? line : `\n${line}`);
    // A file made by hand (`cp .dev.vars.example .dev.vars`) may be world-readable: now it holds a secret.
    chmodSync(file, PRIVATE);
  } else {
    writeFileSync(file, line, { mode: PRIVATE });
  }
  return { copied, keyWritten: true };
}

/** One dotenv line; the value quoted so that dotenv reads it back byte for byte. */
function dotenvLine(name: string, value: string): string {
  const quote = ["'", '"', "`"].find((q) => !value.includes(q));
  if (!quote || (quote === '"' && /\\|\n/.test(value))) throw new Error(`${name} cannot be passed to wrangler dev: its value holds every kind of quote`);
  return `${name}=${quote}${value}${quote}`;
}

/**
 * `vars` in a file only the owner can read, in a directory of its own, for `wrangler dev
 * --env-file`; `remove` deletes it.
 */
export function writePrivateEnvFile(vars: Record<string, string>): { path: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "easel-start-"));
  const path = join(dir, "vars.env");
  writeFileSync(path, `${Object.entries(vars).map(([name, value]) => dotenvLine(name, value)).join("\n")}\n`, { mode: PRIVATE });
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

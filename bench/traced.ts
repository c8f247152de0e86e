/**
 * What the sections that trace workerd from outside (`phases` with `perf`, `fsyncs` with `strace`)
 * share: the context `bench/run.ts` gives them, and the gateway's workerd process to attach to.
 */
import { spawnSync } from "node:child_process";
import type { GatewayProcess } from "../test/e2e/support/processes";

export interface TracedContext {
  auth: Record<string, string>;
  secret: string;
  job: Record<string, unknown>;
  floorConfig: string;
  withGateway: <T>(vars: Record<string, string>, fn: (url: string, gw: GatewayProcess) => Promise<T>, config?: string) => Promise<T>;
  report: (name: string, value: string) => void;
}

/** The pid of the gateway's workerd (the last one in its process group): "" when there is none. */
export function workerdPid(gw: GatewayProcess): string {
  const pgid = gw.pgid();
  if (pgid === undefined) return "";
  return spawnSync("pgrep", ["-g", String(pgid), "-f", "bin/workerd"], { encoding: "utf8" }).stdout.trim().split("\n").at(-1) ?? "";
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

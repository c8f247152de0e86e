/**
 * Peak memory of the gateway's workerd process while the largest job the contract allows (4 ×
 * 2048², incompressible PNGs of ~12 MB) goes through each path. `wrangler dev` runs the Worker and
 * its Durable Objects in one workerd process; its peak resident size (VmHWM, reset before each path
 * through /proc/<pid>/clear_refs) less its resident size just before is what the path cost.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

/** The workerd processes in `wrangler dev`'s process group. */
export function workerdPids(pgid: number): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, "utf8");
        // Fields after the parenthesised command: state, ppid, pgrp, ...
        const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
        return comm === "workerd" && pgrp === pgid ? [Number(d)] : [];
      } catch {
        return [];
      }
    });
}

/** A field of the process's status in kB; 0 once the process is gone (then `measurePeak` says so). */
const statusKb = (pid: number, field: "VmRSS" | "VmHWM"): number => {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
};

export interface MemoryPeak {
  /** Resident size just before the path ran, MB. */
  before: number;
  /** Highest resident size while it ran, MB. */
  peak: number;
  /** A workerd process ended while the path ran (wrangler dev restarts a crashed one). */
  exited: boolean;
}

/**
 * Runs `fn` and reports the workerd processes' resident size before and at the peak (summed over
 * processes). The kernel's high-water mark catches peaks a sampler would miss; a 10 ms sampler
 * stands in where clear_refs cannot be written.
 */
export async function measurePeak(pgid: number, fn: () => Promise<void>): Promise<MemoryPeak> {
  const pids = workerdPids(pgid);
  if (!pids.length) throw new Error("no workerd process found under wrangler dev");
  let resettable = true;
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
    } catch {
      resettable = false;
    }
  }
  const rss = () => pids.reduce((sum, pid) => sum + statusKb(pid, "VmRSS"), 0);
  const before = rss();
  let sampled = before;
  const sampler = setInterval(() => {
    sampled = Math.max(sampled, rss());
  }, 10);
  try {
    await fn();
  } finally {
    clearInterval(sampler);
  }
  const hwm = resettable ? pids.reduce((sum, pid) => sum + statusKb(pid, "VmHWM"), 0) : 0;
  const exited = pids.some((pid) => statusKb(pid, "VmRSS") === 0);
  return { before: before / 1024, peak: Math.max(sampled, hwm, rss()) / 1024, exited };
}

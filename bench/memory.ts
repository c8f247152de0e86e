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

/** A DevTools session on a `wrangler dev` runtime: what the memory bench needs of the inspector. */
export interface DevTools {
  /** Samples the isolate's JS heap (`Runtime.getHeapUsage`) every 20 ms until the returned function is called, which gives the highest used size in MB. */
  sampleHeap(): () => number;
  close(): void;
}

/**
 * Connects to a `wrangler dev` runtime's inspector and turns off its network recording. wrangler
 * attaches to the inspector and sends `Network.enable` whether or not DevTools are open, and the
 * runtime then keeps what each request and subrequest carried, so a 67 MB answer costs about a
 * gigabyte more there. Production has no inspector: the peaks are measured with it off.
 */
export async function connectDevTools(inspectorPort: number): Promise<DevTools> {
  // Node's WebSocket takes headers in its second argument; the inspector proxy wants a local Origin.
  const ws = new WebSocket(`ws://127.0.0.1:${inspectorPort}/ws`, { headers: { origin: "http://127.0.0.1" } } as unknown as string[]);
  let nextId = 1;
  const waiting = new Map<number, (result: Record<string, unknown>) => void>();
  ws.addEventListener("message", (e) => {
    const msg = JSON.parse(String(e.data)) as { id?: number; result?: Record<string, unknown> };
    if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result ?? {});
    if (msg.id !== undefined) waiting.delete(msg.id);
  });
  const call = (method: string) => {
    const id = nextId++;
    ws.send(JSON.stringify({ id, method }));
    return new Promise<Record<string, unknown>>((resolve) => waiting.set(id, resolve));
  };
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("error", () => reject(new Error("could not connect to the inspector")));
  });
  await Promise.race([call("Network.disable"), new Promise((_, reject) => setTimeout(() => reject(new Error("the inspector did not answer within 10 s")), 10_000))]);
  return {
    sampleHeap: () => {
      let peak = 0;
      const timer = setInterval(() => {
        void call("Runtime.getHeapUsage").then((r) => (peak = Math.max(peak, typeof r.usedSize === "number" ? r.usedSize : 0)));
      }, 20);
      return () => (clearInterval(timer), peak / 1024 / 1024);
    },
    close: () => ws.close(),
  };
}

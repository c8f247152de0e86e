import { describe, expect, it } from "vitest";
import { deadline, untilAborted as cutAt, withDeadline } from "../../../src/lib/deadline";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const untilAborted = (signal: AbortSignal) => new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));

describe("deadline", () => {
  it("aborts work that outlasts it, as a TimeoutError", async () => {
    const err = await withDeadline(10, untilAborted).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DOMException);
    expect((err as DOMException).name).toBe("TimeoutError");
  });

  it("passes a parent's abort through", async () => {
    const parent = new AbortController();
    const running = withDeadline(60_000, untilAborted, parent.signal).catch((e: unknown) => e);
    parent.abort(new Error("stopped by the caller"));
    expect(await running).toEqual(new Error("stopped by the caller"));
  });

  it("leaves no timer behind once the work ended: the signal never fires afterwards", async () => {
    let seen: AbortSignal | undefined;
    expect(await withDeadline(10, async (signal) => ((seen = signal), "done"))).toBe("done");
    const cleared = deadline(10);
    cleared.clear();
    await sleep(40);
    expect(seen?.aborted).toBe(false);
    expect(cleared.signal.aborted).toBe(false);
  });

  it("cuts the wait for work that takes no signal (an RPC), and passes its answer or failure through in time", async () => {
    const never = new Promise<string>(() => undefined);
    const err = await withDeadline(10, (signal) => cutAt(never, signal)).catch((e: unknown) => e);
    expect((err as DOMException).name).toBe("TimeoutError");
    expect(await withDeadline(1_000, (signal) => cutAt(Promise.resolve("held"), signal))).toBe("held");
    expect(await withDeadline(1_000, (signal) => cutAt(Promise.reject(new Error("refused")), signal)).catch((e: unknown) => e)).toEqual(new Error("refused"));
  });
});

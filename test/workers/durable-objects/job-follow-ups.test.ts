import { describe, expect, it } from "vitest";
import { FollowUps } from "../../../durable-objects/job/follow-ups";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Follow-ups over a context that only collects what it is handed, and a log of what ran. */
function followUps() {
  const ran: string[] = [];
  const ctx = { waitUntil: (p: Promise<unknown>) => void p } as unknown as DurableObjectState;
  const f = new FollowUps(ctx);
  const job = (name: string) => async () => void ran.push(name);
  return { f, ran, job };
}

describe("a job's follow-ups", () => {
  it("hold the slot's release until the webhook has gone out, the rest until its answer", async () => {
    const { f, ran, job } = followUps();
    f.add(job("release"));
    f.add(job("images"), true);
    await sleep(0);
    expect(ran).toEqual([]);
    f.sent();
    await sleep(0);
    expect(ran).toEqual(["release"]);
    f.run();
    await sleep(0);
    expect(ran).toEqual(["release", "images"]);
  });

  it("start the slot's release on the turn after the webhook request is handed over, so its bytes go first", async () => {
    const { f, ran, job } = followUps();
    f.add(job("release"));
    f.sent();
    await Promise.resolve();
    expect(ran).toEqual([]);
    await sleep(0);
    expect(ran).toEqual(["release"]);
  });

  it("give the slot back within a quarter second when no webhook goes out, without the rest", async () => {
    const { f, ran, job } = followUps();
    f.add(job("release"));
    f.add(job("images"), true);
    await sleep(400);
    expect(ran).toEqual(["release"]);
  });

  it("run each once, however often they are started", async () => {
    const { f, ran, job } = followUps();
    f.add(job("release"));
    f.sent();
    f.run();
    await sleep(400);
    f.run();
    await sleep(0);
    expect(ran).toEqual(["release"]);
  });
});

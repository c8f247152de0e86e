import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { endpointJobs, waitingRuns } from "../../../src/jobs/tenant-runs";
import { randomId } from "../../../src/lib/crypto";
import { runShard, shardOf } from "../../../src/tenant-shards";

/** Run ids until `n` distinct shards are covered: the listings below must merge across shards. */
function idsOverShards(n: number): string[] {
  const ids: string[] = [];
  const shards = new Set<number>();
  for (let i = 0; i < 1000 && shards.size < n; i++) {
    const id = randomId("run");
    if (shards.has(shardOf(id))) continue;
    shards.add(shardOf(id));
    ids.push(id);
  }
  return ids;
}

const tick = () => new Promise((r) => setTimeout(r, 3));

describe("what dialects keep per run, over the tenant's shards", () => {
  it("lists the runs A1111 calls wait on oldest first across shards, at most the limit", async () => {
    const tenant = `waits-${randomId("t")}`;
    const ids = idsOverShards(5);
    expect(ids).toHaveLength(5);
    for (const id of ids) {
      await runShard(env, tenant, id).addWaiting(id, 60_000);
      await tick();
    }
    expect(await waitingRuns(env, tenant, 100)).toEqual(ids);
    expect(await waitingRuns(env, tenant, 3)).toEqual(ids.slice(0, 3));
    await runShard(env, tenant, ids[0] ?? "").removeWaiting(ids[0] ?? "");
    expect(await waitingRuns(env, tenant, 100)).toEqual(ids.slice(1));
    expect(await waitingRuns(env, `other-${tenant}`, 100)).toEqual([]);
  });

  it("lists an endpoint's RunPod jobs newest first across shards, with the status last noted", async () => {
    const tenant = `endpoint-${randomId("t")}`;
    const ids = idsOverShards(4);
    for (const id of ids) {
      await runShard(env, tenant, id).trackEndpointJob("ep-1", id);
      await tick();
    }
    await runShard(env, tenant, "run-elsewhere").trackEndpointJob("ep-2", "run-elsewhere");
    const last = ids[ids.length - 1] ?? "";
    await runShard(env, tenant, last).noteEndpointJob(last, "failed", true);
    const jobs = await endpointJobs(env, tenant, "ep-1", 10);
    expect(jobs.map((j) => j.run_id)).toEqual([...ids].reverse());
    expect(jobs[0]).toMatchObject({ run_id: last, status: "failed", retried: 1 });
    expect((await endpointJobs(env, tenant, "ep-1", 2)).map((j) => j.run_id)).toEqual([...ids].reverse().slice(0, 2));
  });
});

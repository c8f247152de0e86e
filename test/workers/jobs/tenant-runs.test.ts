import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { EndpointJob } from "../../../src/contracts/tenant";
import { endpointCounts, endpointLiveJobs, waitingRuns } from "../../../src/jobs/tenant-runs";
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

  it("counts an endpoint's RunPod jobs across shards by the status last noted, and pages through its live ones oldest first, each shard on its own", async () => {
    const tenant = `endpoint-${randomId("t")}`;
    const ids = idsOverShards(4);
    for (const id of ids) {
      await runShard(env, tenant, id).trackEndpointJob("ep-1", id);
      await tick();
    }
    await runShard(env, tenant, "run-elsewhere").trackEndpointJob("ep-2", "run-elsewhere");
    const last = ids[ids.length - 1] ?? "";
    await runShard(env, tenant, last).noteEndpointJob(last, "failed", true);
    const counts = await endpointCounts(env, tenant, "ep-1");
    expect(Object.fromEntries(counts)).toEqual({ queued: { n: ids.length - 1, retried: 0 }, failed: { n: 1, retried: 1 } });
    // One row a page from each shard: following each shard's last row reaches every live job once.
    const seen: string[] = [];
    const after: (EndpointJob | null)[] = [];
    for (let page = 0; page < ids.length + 1; page++) {
      const lists = await endpointLiveJobs(env, tenant, "ep-1", after, 1);
      lists.forEach((list, n) => (after[n] = list.at(-1) ?? after[n] ?? null));
      seen.push(...lists.flat().map((j) => j.run_id));
    }
    expect(seen.sort()).toEqual(ids.filter((id) => id !== last).sort());
  });

  it("takes a RunPod job's end from the index's end report in its shard", async () => {
    const tenant = `endpoint-end-${randomId("t")}`;
    const [id = ""] = idsOverShards(1);
    await runShard(env, tenant, id).trackEndpointJob("ep-1", id);
    await runShard(env, tenant, id).setStatus({ id, created_at: Date.now(), status: "succeeded", type: "txt2img", track_id: null });
    expect(Object.fromEntries(await endpointCounts(env, tenant, "ep-1"))).toEqual({ succeeded: { n: 1, retried: 0 } });
    expect((await endpointLiveJobs(env, tenant, "ep-1", [], 10)).flat()).toEqual([]);
  });
});

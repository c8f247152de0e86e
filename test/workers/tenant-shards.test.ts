import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { TenantObject } from "../../durable-objects/tenant";
import { indexPage } from "../../src/jobs/job-index";
import { listJobs } from "../../src/jobs/list";
import { endpointCounts, endpointLiveJobs, waitingRuns } from "../../src/jobs/tenant-runs";
import { randomId } from "../../src/lib/crypto";
import { TENANT_SHARDS, indexObject, keyShard, runShard, shardName, shardOf, tenantHome } from "../../src/tenant-shards";
import { tenantObjects } from "./support/objects";

const tables = (name: string) =>
  runInDurableObject(tenantObjects.get(tenantObjects.idFromName(name)), (_o: TenantObject, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master").one().n);

/** The home object and every shard of `tenant`, by name. */
const objectNames = (tenant: string) => [tenant, ...Array.from({ length: TENANT_SHARDS }, (_, n) => shardName(tenant, n))];

describe("a tenant's objects", () => {
  it("spreads run ids over every shard and gives each id or key always the same one", () => {
    const counts = new Array<number>(TENANT_SHARDS).fill(0);
    for (let i = 0; i < 1600; i++) {
      const n = shardOf(randomId("run"));
      counts[n] = (counts[n] ?? 0) + 1;
    }
    // 100 a shard on average: none is left empty or takes a quarter.
    expect(Math.min(...counts)).toBeGreaterThan(0);
    expect(Math.max(...counts)).toBeLessThan(400);
    const id = randomId("run");
    expect(shardOf(id)).toBe(shardOf(id));
  });

  it("answers every read of a tenant that never wrote without giving any of its objects a table", async () => {
    const tenant = `quiet-${randomId("t")}`;
    const run = randomId("run");
    expect(await listJobs(env, tenant, { limit: 20 })).toEqual({ data: [], next_cursor: null });
    expect(await indexPage(env, tenant, { limit: 20, status: "queued" })).toEqual([]);
    expect(await keyShard(env, tenant, "no-such-task").lookup("eks_task", "no-such-task")).toBeNull();
    expect(await waitingRuns(env, tenant, 100)).toEqual([]);
    expect(await endpointCounts(env, tenant, "ep")).toEqual(new Map());
    expect((await endpointLiveJobs(env, tenant, "ep", [], 100)).flat()).toEqual([]);
    expect(await tenantHome(env, tenant).getResult("no-such-result")).toBeNull();
    expect(await tenantHome(env, tenant).getOptions()).toEqual({});
    expect(await runShard(env, tenant, run).claimRefs(run)).toEqual([]);
    for (const name of objectNames(tenant)) expect(await tables(name), JSON.stringify(name)).toBe(0);
  });

  it("writes a job's index row in its run's shard only: listing it leaves the home and the other shards empty", async () => {
    const tenant = `one-row-${randomId("t")}`;
    const run = randomId("run");
    await indexObject(env, tenant, run).admit(tenant, { id: run, created_at: Date.now(), status: "queued", type: "txt2img", track_id: null }, null);
    expect((await indexPage(env, tenant, { limit: 20 })).map((e) => e.row.id)).toEqual([run]);
    const holder = shardName(tenant, shardOf(run));
    for (const name of objectNames(tenant)) {
      if (name === holder) expect(await tables(name)).toBeGreaterThan(0);
      else expect(await tables(name), JSON.stringify(name)).toBe(0);
    }
  });
});

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IndexRow } from "../../../src/contracts/tenant";
import { EaselError } from "../../../src/errors";
import { admitJob } from "../../../src/jobs/limits";
import { randomId } from "../../../src/lib/crypto";
import { allShards, indexObject, tenantHome } from "../../../src/tenant-shards";
import { tenantObjects } from "../support/objects";

const index = () => tenantObjects.get(tenantObjects.idFromName("capped"));
const row = (created_at = Date.now()): IndexRow => ({ id: randomId("run"), created_at, status: "queued", type: "txt2img", track_id: null });

describe("max_active_jobs", () => {
  it("frees a place held by a row whose job was never created, then holds the limit with the headers", async () => {
    // An intake that died between entering the job in the index and creating it.
    const orphan = row(Date.now() - 120_000);
    expect(await index().admit("capped", orphan, null)).toEqual({ ok: true });

    const first = row();
    await admitJob(env, "capped", first);
    expect((await index().list({ limit: 10 })).map((r) => r.id)).toEqual([first.id]);

    const err = await admitJob(env, "capped", row()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EaselError);
    expect(err).toMatchObject({ status: 429, code: "too_many_active_jobs", headers: { "retry-after": "2", "ratelimit-limit": "1", "ratelimit-remaining": "0", "ratelimit-reset": "2" } });
    expect((await index().list({ limit: 10 })).map((r) => r.id)).toEqual([first.id]);
  });

  it("keeps a capped tenant's whole index in its home object, where racing submits get one count", async () => {
    // Four submits at once, whichever shard their ids hash to: with max_active_jobs 1, at most one gets in.
    const results = await Promise.all([row(), row(), row(), row()].map((r) => admitJob(env, "capped", r).then(() => "admitted" as const, (e: unknown) => e)));
    expect(results.filter((r) => r === "admitted").length).toBeLessThanOrEqual(1);
    for (const err of results.filter((r) => r !== "admitted")) expect(err).toMatchObject({ status: 429, code: "too_many_active_jobs" });
    expect(await tenantHome(env, "capped").list({ status: "queued", limit: 10 })).toHaveLength(1);
    for (const shard of allShards(env, "capped")) expect(await shard.list({ limit: 1 })).toEqual([]);
  });

  it("enters an uncapped tenant's job in its run's shard, never refusing it", async () => {
    const tenant = `uncapped-${randomId("t")}`;
    const rows = [row(), row(), row()];
    for (const r of rows) await admitJob(env, tenant, r);
    expect(await tenantHome(env, tenant).list({ limit: 10 })).toEqual([]);
    for (const r of rows) expect((await indexObject(env, tenant, r.id).list({ limit: 10 })).map((x) => x.id)).toContain(r.id);
  });
});

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IndexRow } from "../../../src/contracts/tenant";
import { indexPage } from "../../../src/jobs/job-index";
import { randomId } from "../../../src/lib/crypto";
import { allShards, indexObject, tenantHome } from "../../../src/tenant-shards";

const row = (id: string, created_at: number, over: Partial<IndexRow> = {}): IndexRow => ({ id, created_at, status: "queued", type: "txt2img", track_id: null, ...over });

describe("the tenant's index over its shards", () => {
  it("pages from the first page through every job once, in order, while new jobs arrive", async () => {
    // A tenant without max_active_jobs: each row goes to its run's shard.
    const tenant = `paging-${randomId("t")}`;
    const base = Date.now() - 3_600_000;
    const existing: IndexRow[] = [];
    // Five jobs per millisecond: ties on created_at are broken by id across shards.
    for (let i = 0; i < 200; i++) existing.push(row(randomId("run"), base + Math.floor(i / 5)));
    await Promise.all(existing.map((r) => indexObject(env, tenant, r.id).admit(tenant, r, null)));
    // 200 random ids leave no shard empty (the chance of one is about 1 in 25,000).
    for (const shard of allShards(env, tenant)) expect(await shard.list({ limit: 1 })).toHaveLength(1);
    expect(await tenantHome(env, tenant).list({ limit: 1 })).toEqual([]);

    const seen: IndexRow[] = [];
    let before: { created_at: number; id: string } | undefined;
    for (let page = 0; page < 100; page++) {
      const entries = await indexPage(env, tenant, { before, limit: 7 });
      seen.push(...entries.map((e) => e.row));
      // New jobs arrive between pages, each in its own shard.
      for (let n = 0; n < 3; n++) {
        const fresh = row(randomId("run"), Date.now());
        await indexObject(env, tenant, fresh.id).admit(tenant, fresh, null);
      }
      const last = entries[entries.length - 1];
      if (entries.length < 7 || !last) break;
      before = { created_at: last.row.created_at, id: last.row.id };
    }
    const newestFirst = [...existing].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1));
    expect(seen.map((r) => r.id)).toEqual(newestFirst.map((r) => r.id));
  });

  it("applies the filters in every shard before the merge", async () => {
    const tenant = `filters-${randomId("t")}`;
    const now = Date.now();
    const rows = Array.from({ length: 40 }, (_, i) => row(randomId("run"), now - i, { track_id: i % 4 === 0 ? "batch" : null, type: i % 2 ? "img2img" : "txt2img" }));
    await Promise.all(rows.map((r) => indexObject(env, tenant, r.id).admit(tenant, r, null)));
    const batch = await indexPage(env, tenant, { track_id: "batch", limit: 100 });
    expect(batch.map((e) => e.row.id)).toEqual(rows.filter((r) => r.track_id === "batch").map((r) => r.id));
    const img2img = await indexPage(env, tenant, { type: "img2img", limit: 5 });
    expect(img2img.map((e) => e.row.id)).toEqual(rows.filter((r) => r.type === "img2img").slice(0, 5).map((r) => r.id));
  });

  it("lists a row once when both its home and its shard hold it (max_active_jobs changed in between)", async () => {
    const tenant = `moved-${randomId("t")}`;
    const r = row(randomId("run"), Date.now());
    await indexObject(env, tenant, r.id).admit(tenant, r, null);
    // The end report of a job entered before the tenant was given max_active_jobs.
    await tenantHome(env, tenant).setStatus({ ...r, status: "succeeded" });
    expect((await indexPage(env, tenant, { limit: 10 })).map((e) => e.row.id)).toEqual([r.id]);
  });
});

/**
 * `GET /v1/predictions`: the tenant's Replicate predictions, newest first. Jobs of the other APIs
 * are left out: they have no Replicate model, version or input to show (they are at `/v1/jobs`).
 * The tenant's job index gives the order and the keyset cursor; each page looks at a bounded number
 * of index rows, so a page may come back short with a `next` when other jobs lie in between.
 */
import type { Env } from "../../env";
import { isOk, jobStub } from "../../jobs/client";
import { indexPage } from "../../jobs/job-index";
import { decodeCursor, encodeCursor } from "../../jobs/list";
import type { JobSnapshot } from "../../jobs/results";

/** Index rows read for one page, at most. */
const MAX_SCANNED = 200;

export async function predictionPage(env: Env, tenant: string, q: { cursor?: string; limit: number }): Promise<{ snapshots: JobSnapshot[]; next: string | null }> {
  let before = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  const snapshots: JobSnapshot[] = [];
  let scanned = 0;
  for (;;) {
    const batch = Math.min(MAX_SCANNED - scanned, Math.max(q.limit * 2, 20));
    const rows = (await indexPage(env, tenant, { before, limit: batch })).map((e) => e.row);
    const found = await Promise.all(rows.map(async (row) => jobStub(env, row.id).get(tenant)));
    let i = 0;
    for (; i < rows.length && snapshots.length < q.limit; i += 1) {
      const row = rows[i];
      const res = found[i];
      if (!row || !res) continue;
      scanned += 1;
      before = { created_at: row.created_at, id: row.id };
      if (isOk(res) && res.snapshot.input.dialect === "replicate") snapshots.push(res.snapshot);
    }
    // The index ended within this batch: nothing further.
    if (i === rows.length && rows.length < batch) return { snapshots, next: null };
    if (snapshots.length >= q.limit || scanned >= MAX_SCANNED) return { snapshots, next: before ? encodeCursor(before) : null };
  }
}

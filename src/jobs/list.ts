import type { IndexQuery, IndexRow } from "../contracts/tenant";
import type { Env } from "../env";
import { invalid } from "../errors";
import { base64ToBytes, base64UrlEncode } from "../lib/base64";
import type { Job } from "../schemas/job";
import { indexPage, readIndexed } from "./job-index";
import { RUN_ID_PATTERN } from "./run-id";

export type ListQuery = Omit<IndexQuery, "before"> & { cursor?: string };

/** A page position: the (created_at, id) of the last job handed out, opaque to clients. */
export const encodeCursor = (row: Pick<IndexRow, "created_at" | "id">): string => base64UrlEncode(new TextEncoder().encode(`${row.created_at}.${row.id}`));

const CURSOR = new RegExp(`^(\\d{1,15})\\.(${RUN_ID_PATTERN})$`);

export function decodeCursor(cursor: string): { created_at: number; id: string } {
  const bytes = base64ToBytes(cursor);
  const m = bytes && new TextDecoder().decode(bytes).match(CURSOR);
  if (!m?.[1] || !m[2]) throw invalid("cursor", "not a cursor this API handed out");
  return { created_at: Number(m[1]), id: m[2] };
}

/**
 * Index rows read at most per page asked for: `queued` and `running` are one state in the index,
 * so a page of one of them is filled from the rows of both, and a tenant with many of the other
 * gets a short page (with its cursor) rather than an unbounded scan.
 */
const MAX_SCANNED_PER_PAGE = 200;
/** Rows read per call to the index when a filter may pass some over. */
const SCAN_CHUNK = 20;

/**
 * A page of a tenant's jobs, newest first. The index picks and orders them; each job is then read
 * from its own object, the source of truth. A row whose job's own status is not the one asked for
 * is passed over, and more rows are read to fill the page.
 */
export async function listJobs(env: Env, tenant: string, q: ListQuery): Promise<{ data: Job[]; next_cursor: string | null }> {
  const { cursor, ...filters } = q;
  let before = cursor === undefined ? undefined : decodeCursor(cursor);
  const data: Job[] = [];
  for (let scanned = 0; scanned < MAX_SCANNED_PER_PAGE; ) {
    // Rows past those wanted are read in the same call when a filter may pass some over.
    const read = q.status === "queued" || q.status === "running" ? Math.max(q.limit - data.length, SCAN_CHUNK) : q.limit - data.length;
    const entries = await indexPage(env, tenant, { ...filters, before, limit: read + 1 });
    const chunk = entries.slice(0, read);
    const jobs = await Promise.all(chunk.map((entry) => readIndexed(env, tenant, entry)));
    for (const [i, entry] of chunk.entries()) {
      const job = jobs[i];
      // Filtered on a stale status: the job's own status decides.
      if (job && (!q.status || job.status === q.status)) data.push(job);
      before = { created_at: entry.row.created_at, id: entry.row.id };
      scanned++;
      if (data.length === q.limit) return { data, next_cursor: i < chunk.length - 1 || entries.length > read ? encodeCursor(before) : null };
    }
    if (entries.length <= read) return { data, next_cursor: null };
  }
  return { data, next_cursor: before ? encodeCursor(before) : null };
}

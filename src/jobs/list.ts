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
 * A page of a tenant's jobs, newest first. The index picks and orders them; each job is then read
 * from its own object, the source of truth.
 */
export async function listJobs(env: Env, tenant: string, q: ListQuery): Promise<{ data: Job[]; next_cursor: string | null }> {
  const { cursor, ...filters } = q;
  const entries = await indexPage(env, tenant, { ...filters, before: cursor === undefined ? undefined : decodeCursor(cursor), limit: q.limit + 1 });
  const page = entries.slice(0, q.limit);
  const jobs = await Promise.all(
    page.map(async (entry) => {
      const job = await readIndexed(env, tenant, entry);
      // Filtered on a stale status: the job's own status decides.
      return q.status && job?.status !== q.status ? undefined : job;
    }),
  );
  const last = page[page.length - 1];
  return { data: jobs.filter((j): j is Job => j !== undefined), next_cursor: entries.length > q.limit && last ? encodeCursor(last.row) : null };
}

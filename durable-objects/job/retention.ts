/** An ended job deleted RETENTION_S after its end: its files, its rows in the tenant's objects, its own storage. */
import { config } from "../../src/config";
import { deleteFilesIn, deletePrefixes } from "../../src/storage/purge";
import { purgeTenantRows } from "../../src/jobs/job-index";
import { releaseOutputPrefix } from "../../src/jobs/output-claims";
import { chosenLocation } from "../../src/storage/images";
import { dueBy } from "./due";
import { TERMINAL } from "./ledger";
import type { JobRoom } from "./room";
import { parseInput, webhookBodiesPrefix } from "./tables";

/** A purge that failed (the tenant's object or R2 unreachable) is tried again this much later. */
const PURGE_RETRY_MS = 60_000;

export class Retention {
  /** No purge before this: a failed one waits before it is tried again. */
  private retryAt = 0;

  constructor(private readonly room: JobRoom) {}

  /** Whether the ended job `completedAt` is past RETENTION_S, whether or not its deletion has run (or failed). */
  expired(completedAt: number): boolean {
    return dueBy(completedAt + config.retentionMs(this.room.env));
  }

  /** When the ended job `completedAt` is next due for deletion. */
  dueAt(completedAt: number): number {
    return Math.max(completedAt + config.retentionMs(this.room.env), this.retryAt);
  }

  /**
   * RETENTION_S after the job ended, once its webhook events are sent or given up (a body's images
   * are read from R2 as it is sent): its files in R2, its rows in the tenant's objects (index row,
   * idempotency key, task id) and then all of its own storage go. Each part can be done again, so a
   * purge cut short by a restart is simply done again whole. True when the job is gone.
   */
  async purgeIfDue(): Promise<boolean> {
    const { ctx, env, ledger } = this.room;
    const row = ledger.row();
    if (!row || !TERMINAL.has(row.status) || row.completed_at === null) return false;
    // Webhooks still to send come first: they need nothing of RETENTION_S, which may not parse now.
    if (ledger.pendingWebhooks() > 0) return false;
    if (!dueBy(this.dueAt(row.completed_at))) return false;
    try {
      const input = parseInput(row);
      await deletePrefixes(env.IMAGES, [`inputs/${row.id}/`, `callbacks/${row.id}/`, webhookBodiesPrefix(row.id)]);
      await deleteFilesIn(env.IMAGES, `${input.output_prefix}/`);
      await purgeTenantRows(env, row.tenant, row.id);
      // A location the client chose (SD-on-EKS's) may hold a claim across tenants (in S3_OUTPUT_BUCKET's
      // shared layout, and in R2 before its tenants/ root): free it; a release of no claim changes nothing.
      const location = chosenLocation(row.tenant, row.id, input.output_prefix);
      if (location !== undefined) await releaseOutputPrefix(env, location, row.id);
    } catch (err) {
      console.error("purging an expired job failed; tried again later", err instanceof Error ? err.message : String(err));
      this.retryAt = Date.now() + PURGE_RETRY_MS;
      return false;
    }
    await ctx.storage.deleteAlarm();
    await ctx.storage.deleteAll();
    ledger.forget();
    return true;
  }
}

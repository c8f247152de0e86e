/** Pages of 1,000 keys per prefix at most: a job owns a handful of files, so this bound is never near. */
const MAX_PAGES = 20;

/**
 * Deletes every R2 object under each prefix (a job's inputs, outputs, staged callbacks). Each page
 * is listed from the start again: what was deleted no longer shows, so no cursor is needed.
 */
export async function deletePrefixes(bucket: R2Bucket, prefixes: string[]): Promise<void> {
  for (const prefix of prefixes) {
    for (let page = 0; page < MAX_PAGES; page++) {
      const listed = await bucket.list({ prefix, limit: 1000 });
      if (listed.objects.length) await bucket.delete(listed.objects.map((o) => o.key));
      if (!listed.truncated) break;
    }
  }
}

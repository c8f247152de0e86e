/** Pages of 1,000 keys per prefix at most: a job owns a handful of files, so this bound is never near. */
const MAX_PAGES = 20;

/**
 * Deletes every R2 object under each prefix (a job's inputs, staged callbacks). Each page is
 * listed from the start again: what was deleted no longer shows, so no cursor is needed.
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

/**
 * Deletes the R2 objects directly in `dir` (a job's outputs), not those further down: a place a
 * client chose may enclose one it chose for another job, whose files are that job's. The folders
 * further down stay listed, so the pages go on by cursor.
 */
export async function deleteFilesIn(bucket: R2Bucket, dir: string): Promise<void> {
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const listed = await bucket.list({ prefix: dir, delimiter: "/", limit: 1000, cursor });
    if (listed.objects.length) await bucket.delete(listed.objects.map((o) => o.key));
    if (!listed.truncated) break;
    cursor = listed.cursor;
  }
}

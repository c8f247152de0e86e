/**
 * The tenant's whole queue, as ComfyUI's `GET /queue` answers it, at a cost bounded per call however
 * long the queue: the oldest FULL_ITEMS unended prompts are read from their jobs (graph, the job's
 * own status; one that ended is settled on the way), every later one comes from the tenant's object
 * alone, ACTIVE_PAGE_MAX rows a call. `{clear}` and `/interrupt` walk the same pages, asking the
 * jobs CALL_BATCH at a time.
 */
import { ACTIVE_PAGE_MAX, type PromptTrackerRpc, type TrackedPrompt } from "../../contracts/prompts";
import type { Env } from "../../env";
import { jobStub } from "../../jobs/client";
import type { JobSnapshot } from "../../jobs/results";
import { snapshotFor } from "../../jobs/tenant-job";
import { TERMINAL_STATUSES } from "../../schemas/job";
import { tracker } from "./prompts";
import { indexQueueItem, queueItem, type QueueItem } from "./translate";

/** Prompts read from their jobs per GET /queue: the SDK polls it at every status, and a job object serves ~1,000 requests/s. */
export const FULL_ITEMS = 100;
/** Job objects asked at once by `{clear}` and `/interrupt`. */
const CALL_BATCH = 50;
/** A prompt whose job does not exist this long after it was numbered never got one. */
const UNBORN_MS = 60_000;
const TERMINAL = new Set<string>(TERMINAL_STATUSES);

type Verified = { prompt: TrackedPrompt; snapshot: JobSnapshot | undefined };
type Listed = { running: boolean; item: QueueItem };

/**
 * The tenant's unended prompts numbered after `after` (in `state`), a page at a time. Bounded by the
 * count at the first page: prompts queued meanwhile are numbered later, and may be left to the next call.
 */
async function* pages(t: PromptTrackerRpc, after: number, state?: "queued" | "running"): AsyncGenerator<TrackedPrompt[]> {
  let page = await t.activePage({ after, limit: ACTIVE_PAGE_MAX, state });
  const bound = Math.ceil((state ? page[state] : page.queued + page.running) / ACTIVE_PAGE_MAX) + 1;
  for (let i = 0; i < bound && page.prompts.length; i++) {
    yield page.prompts;
    const last = page.prompts.at(-1);
    if (!last || page.prompts.length < ACTIVE_PAGE_MAX) return;
    page = await t.activePage({ after: last.number, limit: ACTIVE_PAGE_MAX, state });
  }
}

/**
 * The prompts with their jobs, less those that are over: a prompt whose job ended (its notice lost),
 * or whose job never came (the request died between numbering it and creating it), is settled.
 * One just numbered may not have its job yet: it is kept, and only given up well after.
 */
async function verified(env: Env, tenant: string, t: PromptTrackerRpc, prompts: TrackedPrompt[]): Promise<Verified[]> {
  const found = await Promise.all(prompts.map(async (prompt) => ({ prompt, snapshot: await snapshotFor(env, prompt.run_id, tenant) })));
  const over = (v: Verified) => (v.snapshot ? TERMINAL.has(v.snapshot.job.status) : Date.now() - v.prompt.created_at > UNBORN_MS);
  const stale = found.filter(over);
  if (stale.length) await t.settle(stale.map((v) => v.prompt.run_id));
  return found.filter((v) => !over(v));
}

/** The oldest unended prompts, read from their jobs, and the page they came in. */
async function head(env: Env, tenant: string, t: PromptTrackerRpc) {
  const page = await t.activePage({ after: 0, limit: FULL_ITEMS });
  return { page, prompts: await verified(env, tenant, t, page.prompts) };
}

/** `GET /queue`: every unended prompt of the tenant, the first FULL_ITEMS whole, the rest as their object knows them. */
export async function listQueue(env: Env, tenant: string): Promise<{ queue_running: QueueItem[]; queue_pending: QueueItem[] }> {
  const t = tracker(env, tenant);
  const first = await head(env, tenant, t);
  const listed: Listed[] = first.prompts.map(({ prompt, snapshot }) =>
    snapshot ? { running: snapshot.job.status === "running", item: queueItem(snapshot) } : { running: prompt.state === "running", item: indexQueueItem(prompt) },
  );
  const last = first.page.prompts.at(-1);
  if (last && first.page.prompts.length === FULL_ITEMS) {
    for await (const page of pages(t, last.number)) listed.push(...page.map((p) => ({ running: p.state === "running", item: indexQueueItem(p) })));
  }
  return { queue_running: listed.filter((l) => l.running).map((l) => l.item), queue_pending: listed.filter((l) => !l.running).map((l) => l.item) };
}

/** Prompts `GET /prompt` reads from their jobs: the oldest, where one whose end notice was lost stays. */
const REMAINING_CHECKED = 20;

/**
 * `GET /prompt`'s `queue_remaining`: the object's count, as its sockets' `status` says it, less
 * those of its oldest prompts that are over (settled on the way), so a client polling it for 0 gets there.
 */
export async function queueRemaining(env: Env, tenant: string): Promise<number> {
  const t = tracker(env, tenant);
  const page = await t.activePage({ after: 0, limit: REMAINING_CHECKED });
  const over = page.prompts.length ? page.prompts.length - (await verified(env, tenant, t, page.prompts)).length : 0;
  return page.queued + page.running - over;
}

/**
 * Cancels the prompts' jobs, CALL_BATCH at a time, and settles those canceled at once (one status
 * per batch, not one per prompt): a GET /queue right after lists none of them.
 */
export async function cancelPrompts(env: Env, tenant: string, runIds: string[], onlyQueued: boolean, t = tracker(env, tenant)): Promise<void> {
  for (let i = 0; i < runIds.length; i += CALL_BATCH) {
    const batch = runIds.slice(i, i + CALL_BATCH);
    const results = await Promise.all(batch.map((id) => jobStub(env, id).cancel(tenant, onlyQueued)));
    const canceled = batch.filter((_, j) => results[j]?.ok);
    if (canceled.length) await t.settle(canceled);
  }
}

/** `POST /queue {clear}`: every prompt still waiting; the job itself refuses if it started meanwhile (as ComfyUI, a running one goes on). */
export async function clearPending(env: Env, tenant: string): Promise<void> {
  const t = tracker(env, tenant);
  for await (const page of pages(t, 0, "queued")) await cancelPrompts(env, tenant, page.map((p) => p.run_id), true, t);
}

/**
 * `POST /interrupt` with no prompt: every running prompt. The object's `running` rows are jobs that
 * started (a job never goes back to waiting); the oldest are read from their jobs too, since a job
 * that started a moment ago may not have told the object yet.
 */
export async function interruptAll(env: Env, tenant: string): Promise<void> {
  const t = tracker(env, tenant);
  const running = new Set((await head(env, tenant, t)).prompts.flatMap((v) => (v.snapshot?.job.status === "running" ? [v.prompt.run_id] : [])));
  for await (const page of pages(t, 0, "running")) for (const p of page) running.add(p.run_id);
  await cancelPrompts(env, tenant, [...running], false, t);
}

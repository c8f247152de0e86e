/**
 * The floor of the gateway's latency under the local runtime, for `npm run bench`: a Worker that
 * does only the irreducible part of a job and nothing else (no auth, no validation, no index, no
 * scheduler). `POST /submit`: a write in a Durable Object that did not exist before and an R2 put,
 * then 202. `POST /run`: the same write, 202, then the backend called, its image put into R2, the
 * result written and a webhook POSTed. The gateway's figures are compared with these, measured in
 * the same run on the same machine.
 *
 * `POST /run-contract`: `/run` plus only the durable steps the contract adds on a job's path, each
 * one write in its own object as the gateway's are (no validation, no events, no outbox): the row
 * in one of 16 index objects beside the job's creation (with its backstop alarm), a slot granted by
 * the backend's line object before the attempt is written, then the call as in `/run`; the index's
 * end report before the webhook (an ended job must not count against `max_active_jobs` once its
 * client can know it ended), the slot's release after it. What the gateway costs over this is its own.
 */
import { DurableObject } from "cloudflare:workers";

interface FloorEnv {
  RECORDS: DurableObjectNamespace<JobRecord>;
  LINES: DurableObjectNamespace<SlotLine>;
  SHARDS: DurableObjectNamespace<IndexShard>;
  BUCKET: R2Bucket;
}

/** A job's backstop (the gateway's alarm at creation), then its deletion once ended. */
const BACKSTOP_MS = 5_000;
const RETENTION_MS = 30 * 24 * 3600_000;

export class JobRecord extends DurableObject<FloorEnv> {
  write(body: string): number {
    const sql = this.ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS record (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    sql.exec("INSERT INTO record (body) VALUES (?)", body);
    return body.length;
  }

  /** A write that also sets the job's one alarm (`/run-contract`: its backstop, then its deletion). */
  async writeAndAlarm(body: string, inMs: number): Promise<number> {
    const n = this.write(body);
    await this.ctx.storage.setAlarm(Date.now() + inMs);
    return n;
  }

  override async alarm(): Promise<void> {}
}

/** An object's SQLite with its one table made at first use. */
function withTable(ctx: DurableObjectState, ddl: string): () => SqlStorage {
  let ready = false;
  return () => {
    if (!ready) ctx.storage.sql.exec(ddl);
    ready = true;
    return ctx.storage.sql;
  };
}

/** One backend's line (`/run-contract`): a slot granted, then given back, each a commit. */
export class SlotLine extends DurableObject<FloorEnv> {
  private readonly sql = withTable(this.ctx, "CREATE TABLE IF NOT EXISTS slots (job TEXT PRIMARY KEY)");

  acquire(job: string): boolean {
    this.sql().exec("INSERT OR IGNORE INTO slots (job) VALUES (?)", job);
    return true;
  }

  release(job: string): void {
    this.sql().exec("DELETE FROM slots WHERE job = ?", job);
  }
}

/** One of 16 index objects (`/run-contract`): a job's row before its 202, its end before its webhook. */
export class IndexShard extends DurableObject<FloorEnv> {
  private readonly sql = withTable(this.ctx, "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, status TEXT NOT NULL)");

  add(id: string): void {
    this.sql().exec("INSERT OR IGNORE INTO jobs (id, created_at, status) VALUES (?, ?, 'queued')", id, Date.now());
  }

  end(id: string): void {
    this.sql().exec("UPDATE jobs SET status = 'succeeded' WHERE id = ?", id);
  }
}

type RunRequest = { backend: string; body: unknown; webhook: string };

/** `contract`: the slot and the attempt's write before the call, the end's write moving the alarm. */
async function run(env: FloorEnv, record: DurableObjectStub<JobRecord>, id: string, req: RunRequest, contract = false): Promise<void> {
  if (contract) {
    await lineOf(env).acquire(id);
    await record.write(JSON.stringify({ id, attempt: 1 }));
  }
  const res = await fetch(req.backend, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(req.body) });
  const answer = (await res.json()) as { images?: string[] };
  const image = Uint8Array.from(atob(answer.images?.[0] ?? ""), (c) => c.charCodeAt(0));
  await env.BUCKET.put(`floor/${id}.png`, image);
  const done = JSON.stringify({ id, done: true });
  await (contract ? record.writeAndAlarm(done, RETENTION_MS) : record.write(done));
  // The job stops counting against max_active_jobs before its client can hear it ended.
  if (contract) await shardOf(env, id).end(id);
  await fetch(req.webhook, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ data: { id } }) });
  if (contract) await lineOf(env).release(id);
}

const lineOf = (env: FloorEnv) => env.LINES.get(env.LINES.idFromName("sim"));
const shardOf = (env: FloorEnv, id: string) => env.SHARDS.get(env.SHARDS.idFromName(`shard-${id[0]}`));

export default {
  async fetch(req: Request, env: FloorEnv, ctx: ExecutionContext): Promise<Response> {
    const { pathname } = new URL(req.url);
    if (pathname === "/healthz") return Response.json({ ok: true });
    if (req.method !== "POST") return new Response("not found", { status: 404 });
    const body = await req.text();
    const id = crypto.randomUUID();
    const record = env.RECORDS.get(env.RECORDS.idFromName(id));
    if (pathname === "/submit") {
      await Promise.all([record.write(body), env.BUCKET.put(`floor/${id}`, body)]);
      return Response.json({ id }, { status: 202 });
    }
    if (pathname === "/run") {
      await record.write(body);
      ctx.waitUntil(run(env, record, id, JSON.parse(body) as RunRequest));
      return Response.json({ id }, { status: 202 });
    }
    if (pathname === "/run-contract") {
      await Promise.all([record.writeAndAlarm(body, BACKSTOP_MS), shardOf(env, id).add(id)]);
      ctx.waitUntil(run(env, record, id, JSON.parse(body) as RunRequest, true));
      return Response.json({ id }, { status: 202 });
    }
    return new Response("not found", { status: 404 });
  },
} satisfies ExportedHandler<FloorEnv>;

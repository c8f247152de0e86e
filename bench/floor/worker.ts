/**
 * The floor of the gateway's latency under the local runtime, for `npm run bench`: a Worker that
 * does only the irreducible part of a job and nothing else (no auth, no validation, no index, no
 * scheduler). `POST /submit`: a write in a Durable Object that did not exist before and an R2 put,
 * then 202. `POST /run`: the same write, 202, then the backend called, its image put into R2, the
 * result written and a webhook POSTed. The gateway's figures are compared with these, measured in
 * the same run on the same machine.
 */
import { DurableObject } from "cloudflare:workers";

interface FloorEnv {
  RECORDS: DurableObjectNamespace<JobRecord>;
  BUCKET: R2Bucket;
}

export class JobRecord extends DurableObject<FloorEnv> {
  write(body: string): number {
    const sql = this.ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS record (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    sql.exec("INSERT INTO record (body) VALUES (?)", body);
    return body.length;
  }
}

type RunRequest = { backend: string; body: unknown; webhook: string };

async function run(env: FloorEnv, record: DurableObjectStub<JobRecord>, id: string, req: RunRequest): Promise<void> {
  const res = await fetch(req.backend, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(req.body) });
  const answer = (await res.json()) as { images?: string[] };
  const image = Uint8Array.from(atob(answer.images?.[0] ?? ""), (c) => c.charCodeAt(0));
  await env.BUCKET.put(`floor/${id}.png`, image);
  await record.write(JSON.stringify({ id, done: true }));
  await fetch(req.webhook, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ data: { id } }) });
}

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
    return new Response("not found", { status: 404 });
  },
} satisfies ExportedHandler<FloorEnv>;

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IndexRow } from "../../../src/contracts/tenant";
import { EaselError } from "../../../src/errors";
import { admitJob } from "../../../src/jobs/limits";
import { randomId } from "../../../src/lib/crypto";
import { tenantObjects } from "../support/objects";

const index = () => tenantObjects.get(tenantObjects.idFromName("capped"));
const row = (created_at = Date.now()): IndexRow => ({ id: randomId("run"), created_at, status: "queued", type: "txt2img", track_id: null });

describe("max_active_jobs", () => {
  it("frees a place held by a row whose job was never created, then holds the limit with the headers", async () => {
    // An intake that died between entering the job in the index and creating it.
    const orphan = row(Date.now() - 120_000);
    expect(await index().admit("capped", orphan, null)).toEqual({ ok: true });

    const first = row();
    await admitJob(env, "capped", first);
    expect((await index().list({ limit: 10 })).map((r) => r.id)).toEqual([first.id]);

    const err = await admitJob(env, "capped", row()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EaselError);
    expect(err).toMatchObject({ status: 429, code: "too_many_active_jobs", headers: { "retry-after": "2", "ratelimit-limit": "1", "ratelimit-remaining": "0", "ratelimit-reset": "2" } });
    expect((await index().list({ limit: 10 })).map((r) => r.id)).toEqual([first.id]);
  });
});

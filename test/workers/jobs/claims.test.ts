import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { IDEMPOTENCY_TTL_MS } from "../../../src/contracts/tenant";
import { claimKey, freeClaims } from "../../../src/jobs/claims";
import { randomId } from "../../../src/lib/crypto";
import { keyShard, runShard } from "../../../src/tenant-shards";

describe("claims in the key's shard", () => {
  it("gives a key's first run to every later request with the same body, and a conflict for another body", async () => {
    const tenant = `claims-${randomId("t")}`;
    const [first, second, third] = [randomId("run"), randomId("run"), randomId("run")];
    expect(await claimKey(env, tenant, "idempotency", "k1", "body-a", first, IDEMPOTENCY_TTL_MS)).toEqual({ status: "claimed", runId: first });
    expect(await claimKey(env, tenant, "idempotency", "k1", "body-a", second, IDEMPOTENCY_TTL_MS)).toEqual({ status: "existing", runId: first });
    expect(await claimKey(env, tenant, "idempotency", "k1", "body-b", third, IDEMPOTENCY_TTL_MS)).toEqual({ status: "conflict", runId: first });
    expect(await keyShard(env, tenant, "k1").lookup("idempotency", "k1")).toBe(first);
    // Only the run that holds the key is noted as holding it.
    expect(await runShard(env, tenant, first).claimRefs(first)).toEqual([{ scope: "idempotency", key: "k1" }]);
    expect(await runShard(env, tenant, second).claimRefs(second)).toEqual([]);
    expect(await runShard(env, tenant, third).claimRefs(third)).toEqual([]);
  });

  it("keeps one tenant's keys and task ids apart from another's", async () => {
    const [a, b] = [`claims-a-${randomId("t")}`, `claims-b-${randomId("t")}`];
    const [runA, runB] = [randomId("run"), randomId("run")];
    expect(await claimKey(env, a, "eks_task", "task-1", "h", runA, null)).toMatchObject({ status: "claimed" });
    expect(await claimKey(env, b, "eks_task", "task-1", "h", runB, null)).toEqual({ status: "claimed", runId: runB });
    expect(await keyShard(env, a, "task-1").lookup("eks_task", "task-1")).toBe(runA);
  });

  it("frees every key a run claimed once its job is deleted, and no other run's", async () => {
    const tenant = `claims-free-${randomId("t")}`;
    const [run, other] = [randomId("run"), randomId("run")];
    await claimKey(env, tenant, "idempotency", "mine", "h", run, IDEMPOTENCY_TTL_MS);
    await claimKey(env, tenant, "eks_task", "my-task", "h", run, null);
    await claimKey(env, tenant, "eks_task", "their-task", "h", other, null);
    await freeClaims(env, tenant, run);
    expect(await keyShard(env, tenant, "mine").lookup("idempotency", "mine")).toBeNull();
    expect(await keyShard(env, tenant, "my-task").lookup("eks_task", "my-task")).toBeNull();
    expect(await keyShard(env, tenant, "their-task").lookup("eks_task", "their-task")).toBe(other);
    const fresh = randomId("run");
    expect(await claimKey(env, tenant, "eks_task", "my-task", "h2", fresh, null)).toEqual({ status: "claimed", runId: fresh });
  });
});

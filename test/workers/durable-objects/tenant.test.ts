import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { IDEMPOTENCY_TTL_MS, type TenantObject } from "../../../durable-objects/tenant";

const tenant = (name: string) => env.TENANT_STATE.get(env.TENANT_STATE.idFromName(name));

describe("tenant object", () => {
  it("binds an idempotency key to the first run and answers conflict for another body", async () => {
    const t = tenant("idem");
    expect(await t.claim("idempotency", "k1", "hash-a", "run_first", IDEMPOTENCY_TTL_MS)).toEqual({ status: "claimed", runId: "run_first" });
    expect(await t.claim("idempotency", "k1", "hash-a", "run_second", IDEMPOTENCY_TTL_MS)).toEqual({ status: "existing", runId: "run_first" });
    expect(await t.claim("idempotency", "k1", "hash-b", "run_third", IDEMPOTENCY_TTL_MS)).toMatchObject({ status: "conflict" });
  });

  it("scopes keys per tenant and per scope", async () => {
    expect(await tenant("scope-a").claim("idempotency", "same", "h", "run_a", IDEMPOTENCY_TTL_MS)).toMatchObject({ status: "claimed" });
    expect(await tenant("scope-b").claim("idempotency", "same", "h", "run_b", IDEMPOTENCY_TTL_MS)).toMatchObject({ status: "claimed", runId: "run_b" });
    expect(await tenant("scope-a").claim("eks_task", "same", "h", "run_c", null)).toMatchObject({ status: "claimed", runId: "run_c" });
  });

  it("forgets an idempotency key after 24 hours", async () => {
    const t = tenant("expiry");
    await t.claim("idempotency", "old", "h", "run_old", IDEMPOTENCY_TTL_MS);
    await runInDurableObject(t, (_o: TenantObject, state) => {
      state.storage.sql.exec("UPDATE claims SET expires_at = ? WHERE key = 'old'", Date.now() - 1);
    });
    expect(await t.claim("idempotency", "old", "h2", "run_new", IDEMPOTENCY_TTL_MS)).toEqual({ status: "claimed", runId: "run_new" });
  });

  it("keeps the options a tenant set", async () => {
    const t = tenant("opts");
    await t.setOptions({ sd_model_checkpoint: "v1-5-pruned-emaonly.safetensors" });
    expect(await t.getOptions()).toEqual({ sd_model_checkpoint: "v1-5-pruned-emaonly.safetensors" });
  });
});

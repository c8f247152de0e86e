import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

/** Configuration the Worker sees inside workerd tests: two tenants, two dead backends, a hanging one and two one-slot ones. */
const workerTestBindings = (hangingBackendUrl: string) => ({
  TENANTS: JSON.stringify({
    acme: { api_keys: ["sk_acme_1"], webhook_secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] },
    globex: { api_keys: ["sk_globex_1"], webhook_secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] },
    capped: { api_keys: ["sk_capped_1"], max_active_jobs: 1 },
  }),
  BACKENDS: JSON.stringify([
    { name: "dead-a", kind: "a1111", url: "http://127.0.0.1:9", models: ["v1-5-pruned-emaonly"], timeout_s: 5 },
    { name: "dead-b", kind: "a1111", url: "http://127.0.0.1:1", models: ["v1-5-pruned-emaonly"], timeout_s: 5 },
    { name: "hang", kind: "a1111", url: hangingBackendUrl, types: ["img2img"], models: ["v1-5-pruned-emaonly"], timeout_s: 30, max_concurrency: 100 },
    // One model on two one-slot backends: scheduling tests fill them and watch the lines.
    { name: "busy-a", kind: "a1111", url: hangingBackendUrl, types: ["img2img"], models: ["two-lines"], timeout_s: 30, max_concurrency: 1 },
    { name: "busy-b", kind: "a1111", url: hangingBackendUrl, types: ["img2img"], models: ["two-lines"], timeout_s: 30, max_concurrency: 1 },
  ]),
  PUBLIC_BASE_URL: "http://gateway.test",
  WEBHOOK_RETRY_SCHEDULE: "1,1",
  ALLOW_PRIVATE_URLS: "false",
  URL_SIGNING_SECRET: "test-signing-secret",
  // An S3 store stood in for by the test server (its `flaky` bucket takes a key's PUT at the second try).
  S3_ENDPOINT: hangingBackendUrl,
  S3_REGION: "us-east-1",
  S3_ACCESS_KEY_ID: "AKIDEXAMPLE",
  S3_SECRET_ACCESS_KEY: "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
});

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: workerTestBindings(inject("hangingBackendUrl")) },
          })),
        ],
        test: { name: "workers", include: ["test/workers/**/*.test.ts"], globalSetup: ["test/workers/global-setup.ts"], sequence: { groupOrder: 0 } },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Each file starts its own wrangler dev; two at a time is what 2 cores take.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../../src/env";
import { endpointBackends, endpointRoute } from "../../../src/jobs/endpoints";

/** The test backends, with three deployments: pinned to a backend, a model's, and one taking txt2img only. */
const withEndpoints: Env = {
  ...env,
  ENDPOINTS: JSON.stringify({ pinned: { backend: "hang", types: ["img2img"] }, modelled: { model: "two-lines" }, "t2i-only": { types: ["txt2img"] } }),
};
const refusal = { field: "input.api_name", message: "endpoint does not serve it" };

describe("what an endpoint name stands for", () => {
  it("pins a job to the endpoint's backend, whatever that backend's models list says", () => {
    expect(endpointRoute(withEndpoints, "pinned", "img2img", refusal)).toEqual({ model: undefined, backend: "hang", pin_overrides_models: true });
    // The workers behind it: that backend alone.
    expect(endpointBackends(withEndpoints, "pinned").map((b) => b.name)).toEqual(["hang"]);
  });

  it("gives the endpoint's model as the default, with no pin", () => {
    expect(endpointRoute(withEndpoints, "modelled", "img2img", refusal)).toEqual({ model: "two-lines", backend: undefined, pin_overrides_models: false });
  });

  it("refuses a job type the endpoint does not serve, naming the dialect's field", () => {
    expect(endpointRoute(withEndpoints, "t2i-only", "txt2img", refusal).pin_overrides_models).toBe(false);
    let refused: unknown;
    try {
      endpointRoute(withEndpoints, "t2i-only", "img2img", refusal);
    } catch (err) {
      refused = err;
    }
    expect(refused).toMatchObject({ status: 422, details: [{ path: "input.api_name", message: "endpoint does not serve it" }] });
  });

  it("routes an unlisted name like any job: no pin, no model, every backend of its type", () => {
    expect(endpointRoute(withEndpoints, "abc123", "upscale", refusal)).toEqual({ model: undefined, backend: undefined, pin_overrides_models: false });
    expect(endpointBackends(withEndpoints, "abc123").map((b) => b.name)).toEqual(["dead-a", "dead-b"]);
  });
});

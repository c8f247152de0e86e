/**
 * What a deployment name in a dialect's path stands for (`ENDPOINTS`: a RunPod `endpoint_id`, a
 * Cerebrium `app_name`): a backend pin, a default model, the job types it takes. Dialects word the
 * refusal; the rule is here.
 */
import { fittingBackends } from "../backends/models";
import { config, type BackendConfig, type JobType } from "../config";
import type { Env } from "../env";
import { invalid } from "../errors";
import type { IntakeRequest } from "./intake";

/** An endpoint's routing, as intake takes it; `model` is the default a request's own model overrides. */
export type EndpointRoute = Pick<IntakeRequest, "model" | "backend" | "pin_overrides_models">;

/**
 * The route of a job of `type` sent to endpoint `name`; a type the endpoint does not serve is a
 * 422 naming `refusal.field`. An unlisted name routes like any job.
 */
export function endpointRoute(env: Env, name: string, type: JobType, refusal: { field: string; message: string }): EndpointRoute {
  const deployment = config.endpoint(env, name);
  if (deployment?.types && !deployment.types.includes(type)) throw invalid(refusal.field, refusal.message);
  // A pin runs the job whatever the backend's `models` list says, as a real endpoint serves its one model.
  return { model: deployment?.model, backend: deployment?.backend, pin_overrides_models: deployment?.backend !== undefined };
}

/** The backends that can run the endpoint's jobs (of its first type): what stands behind it as workers. */
export function endpointBackends(env: Env, name: string): BackendConfig[] {
  const deployment = config.endpoint(env, name);
  return fittingBackends(config.backends(env), { type: deployment?.types?.[0] ?? "txt2img", backend: deployment?.backend, pinOverridesModels: true });
}

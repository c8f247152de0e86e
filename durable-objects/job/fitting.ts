/** The backends a job may run on, in configuration order, as its stored input says (see fittingBackends). */
import { fittingBackends } from "../../src/backends/models";
import { config, type BackendConfig } from "../../src/config";
import type { Env } from "../../src/env";
import type { StoredJobInput } from "../../src/jobs/spec";

export const fittingFor = (env: Env, input: StoredJobInput): BackendConfig[] =>
  fittingBackends(config.backends(env), { type: input.spec.type, model: input.spec.model, sampler: input.spec.sampler, backend: input.backend, pinOverridesModels: input.pin_overrides_models, among: input.backends });

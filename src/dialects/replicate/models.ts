/**
 * What a Replicate model name or version id stands for: an `ENDPOINTS` entry keyed `owner/name`
 * (models and deployments alike) or by a version id. Unlisted names are 404s, as on Replicate.
 */
import { config, type EndpointConfig } from "../../config";
import type { Env } from "../../env";
import { EaselError } from "../../errors";
import { sha256Hex } from "../../lib/crypto";
import { ASPECT_RATIOS, SCHEDULERS } from "./translate";

export interface ReplicateModel {
  /** The `ENDPOINTS` key, which routes the job. */
  key: string;
  /** `owner/name` as predictions report it (the key itself for an entry keyed by a version id). */
  name: string;
  version: string;
  endpoint: EndpointConfig;
}

const isModelName = (key: string): boolean => /^[^/\s:]+\/[^/\s:]+$/.test(key);

/** The version an entry reports: its own `version`, the key when it is a version id, else a hash of the name (stable across deploys). */
async function versionOf(key: string, endpoint: EndpointConfig): Promise<string> {
  if (endpoint.version) return endpoint.version;
  if (!isModelName(key)) return key;
  return sha256Hex(`replicate-model:${key}`);
}

const notFound = (what: string) => new EaselError(404, "not_found", `${what} not found, or you do not have permission to access it`);

async function resolved(key: string, endpoint: EndpointConfig, entries: [string, EndpointConfig][]): Promise<ReplicateModel> {
  const version = await versionOf(key, endpoint);
  let name = key;
  if (!isModelName(key)) {
    // A version-keyed entry reports the model whose version it is, when one is listed.
    for (const [other, cfg] of entries) if (isModelName(other) && (await versionOf(other, cfg)) === version) name = other;
  }
  return { key, name, version, endpoint };
}

/** `owner/name` of a model or deployment path. */
export async function modelByName(env: Env, name: string, what: "model" | "deployment" = "model"): Promise<ReplicateModel> {
  const endpoint = isModelName(name) ? config.endpoint(env, name) : undefined;
  if (!endpoint) throw notFound(`${what} ${name}`);
  return resolved(name, endpoint, config.endpoints(env));
}

/** Every entry keyed `owner/name`: the models and deployments this gateway serves. */
export async function listedModels(env: Env): Promise<ReplicateModel[]> {
  const entries = config.endpoints(env);
  return Promise.all(entries.filter(([key]) => isModelName(key)).map(([key, endpoint]) => resolved(key, endpoint, entries)));
}

/** `version` of `POST /v1/predictions`: `owner/name:version`, a bare version id, or `owner/name`. */
export async function modelByVersion(env: Env, ref: string): Promise<ReplicateModel> {
  const colon = ref.lastIndexOf(":");
  const name = colon >= 0 ? ref.slice(0, colon) : undefined;
  const id = colon >= 0 ? ref.slice(colon + 1) : ref;
  if (name === undefined && isModelName(id)) return modelByName(env, id);
  const entries = config.endpoints(env);
  for (const [key, endpoint] of entries) {
    if ((await versionOf(key, endpoint)) !== id) continue;
    const model = await resolved(key, endpoint, entries);
    if (name === undefined || name === model.name) return model;
    // A version listed on its own, under a name the configuration does not list (replicate-python's
    // run("owner/name:version") asks for the version under the name the user wrote): that name is its model's.
    if (model.name === key && isModelName(name) && !config.endpoint(env, name)) return { ...model, name };
  }
  throw notFound(`version ${ref}`);
}

/** The model object of `GET /v1/models/{owner}/{name}`. */
export function modelObject(base: string, model: ReplicateModel) {
  const [owner = "", name = ""] = model.name.split("/");
  return {
    url: `${base}/v1/models/${model.name}`,
    owner,
    name,
    description: `${model.name} on this gateway's own backends${model.endpoint.model ? ` (${model.endpoint.model})` : ""}`,
    visibility: "private",
    github_url: null,
    paper_url: null,
    license_url: null,
    run_count: 0,
    cover_image_url: null,
    default_example: null,
    latest_version: versionObject(model),
  };
}

/**
 * The deployment object of `GET /v1/deployments/{owner}/{name}`: one release, its model the entry
 * itself (replicate-python builds `deployment.predictions.create` from `owner` and `name`).
 */
export function deploymentObject(model: ReplicateModel) {
  const [owner = "", name = ""] = model.name.split("/");
  return {
    owner,
    name,
    current_release: {
      number: 1,
      model: model.name,
      version: model.version,
      // As for versions: the configuration has no history.
      created_at: "2026-01-01T00:00:00.000Z",
      created_by: null,
      configuration: { hardware: "gpu", min_instances: 0, max_instances: 1 },
    },
  };
}

/** What the Input schema of a version lists: the inputs this dialect reads. */
const INPUT_PROPERTIES = {
  prompt: { type: "string", title: "Prompt" },
  negative_prompt: { type: "string", title: "Negative Prompt" },
  image: { type: "string", format: "uri", title: "Image", description: "img2img source: a URL, a data URI or a /v1/files URL" },
  prompt_strength: { type: "number", minimum: 0, maximum: 1, title: "Prompt Strength" },
  num_outputs: { type: "integer", minimum: 1, maximum: 4, default: 1, title: "Num Outputs" },
  num_inference_steps: { type: "integer", minimum: 1, maximum: 150, title: "Num Inference Steps" },
  guidance_scale: { type: "number", minimum: 1, maximum: 30, title: "Guidance Scale" },
  seed: { type: "integer", title: "Seed", description: "random when left out" },
  width: { type: "integer", minimum: 64, maximum: 2048, title: "Width" },
  height: { type: "integer", minimum: 64, maximum: 2048, title: "Height" },
  scheduler: { type: "string", enum: Object.keys(SCHEDULERS), title: "Scheduler" },
  aspect_ratio: { type: "string", enum: ASPECT_RATIOS, title: "Aspect Ratio", description: "about one megapixel; custom: width and height" },
  megapixels: { type: "string", enum: ["1", "0.25"], title: "Megapixels" },
  output_format: { type: "string", enum: ["webp", "jpg", "png"], title: "Output Format", description: "accepted; outputs are PNG" },
  workflow_json: { type: "string", title: "Workflow JSON", description: "a ComfyUI API-format graph: runs as a workflow job, the other inputs unread" },
} as const;

/** The version object: Python's client needs `openapi_schema` (an object) and `cog_version` (a string). */
export function versionObject(model: ReplicateModel) {
  return {
    id: model.version,
    // The configuration has no history: a fixed date stands for when a version was made.
    created_at: "2026-01-01T00:00:00.000Z",
    cog_version: "0.9.0",
    openapi_schema: {
      openapi: "3.0.2",
      info: { title: model.name, version: model.version },
      paths: {},
      components: {
        schemas: {
          Input: { type: "object", title: "Input", properties: INPUT_PROPERTIES },
          Output: { type: "array", title: "Output", items: { type: "string", format: "uri" } },
        },
      },
    },
  };
}

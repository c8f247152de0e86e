/**
 * A RunPod endpoint running worker-comfyui (5.x): the job's graph (Easel's for canonical jobs) and
 * its images go in `/run`'s input; status, webhook and cancel work as for any RunPod job.
 */
import type { BackendConfig } from "../config";
import { Base64Bytes, jsonBody } from "../lib/json-slots";
import { comfyPlan } from "./comfyui-plan";
import { callBackend, failed, parseJsonObject, statusFailure } from "./http";
import { runpodHeaders, runpodPolicy, runpodStopped } from "./runpod";
import { comfyWorkerOutcome } from "./runpod-comfyui-output";
import type { BackendAdapter, CallbackOutcome, CallbackSource, GenerationRequest, ImageStore, ModelInfo, Outcome, WorkflowOutputs } from "./types";
import { withDeadline } from "../lib/deadline";

const FIRST_POLL_MS = 2_000;
const CALL_TIMEOUT_MS = 30_000;

const cannotAsk = async () => "unknown" as const;

/** What a poll or a callback must bring back: a canonical job's count, or whatever a workflow saves. */
const expectedOf = (ctx: { samples: number; upscale: boolean; workflow?: WorkflowOutputs }) => (ctx.workflow ? undefined : ctx.upscale ? 1 : ctx.samples);

export class RunPodComfyUIAdapter implements BackendAdapter {
  constructor(readonly config: BackendConfig) {}

  async submit(req: GenerationRequest): Promise<Outcome> {
    // A worker cannot be asked what it has: a configured list gives the exact spellings, else the name goes as asked.
    const plan = comfyPlan(req, { checkpoints: this.config.models ?? [], upscaleModels: [], listed: false });
    if (!("prompt" in plan)) return { kind: "failed", failure: plan };
    const images = plan.uploads.map((u) => ({ name: u.name, image: new Base64Bytes(u.bytes) }));
    // worker-comfyui takes of extra_data only the Comfy.org API key (it puts it there itself).
    const key = req.credentials?.api_key_comfy_org;
    const body = { input: { workflow: plan.prompt, ...(images.length ? { images } : {}), ...(key ? { comfy_org_api_key: key } : {}) }, webhook: req.callbackUrl, policy: runpodPolicy(this.config) };
    // As for RunPod's A1111 worker: a cut `/run` is not sent again before its ttl has run out (its callback is awaited meanwhile).
    const res = await callBackend(`${this.config.url}/run`, { method: "POST", headers: runpodHeaders(this.config), body: jsonBody(body) }, CALL_TIMEOUT_MS, req.signal, cannotAsk);
    if (!res.ok) return res.outcome;
    if (res.status < 200 || res.status >= 300) return statusFailure(res.status, res.body);
    const json = parseJsonObject(res.body);
    if (!json || typeof json.id !== "string") return failed("backend_failed", "RunPod accepted the job without an id", true);
    return { kind: "pending", externalId: json.id, pollAfterMs: FIRST_POLL_MS };
  }

  async poll(externalId: string, ctx: { samples: number; upscale: boolean; workflow?: WorkflowOutputs; signal: AbortSignal; images: ImageStore }): Promise<Outcome> {
    const res = await callBackend(`${this.config.url}/status/${encodeURIComponent(externalId)}`, { headers: runpodHeaders(this.config) }, CALL_TIMEOUT_MS, ctx.signal);
    // A status call that failed says nothing about the job, which may well be running.
    if (!res.ok) return failed("backend_unavailable", "the RunPod status call failed", true);
    if (res.status === 404) return failed("backend_failed", "RunPod no longer knows the job", true);
    if (res.status !== 200) return failed("backend_unavailable", `RunPod status answered ${res.status}`, true);
    return comfyWorkerOutcome(parseJsonObject(res.body), { expected: expectedOf(ctx), workflow: ctx.workflow, images: ctx.images, signal: ctx.signal });
  }

  async callback(req: { body: CallbackSource; samples: number; upscale: boolean; workflow?: WorkflowOutputs; images: ImageStore }): Promise<CallbackOutcome | undefined> {
    const json = parseJsonObject(await new Response(await req.body.open()).text());
    if (!json || typeof json.status !== "string" || typeof json.id !== "string") return undefined;
    const outcome = await withDeadline(CALL_TIMEOUT_MS * 2, (signal) => comfyWorkerOutcome(json, { expected: expectedOf(req), workflow: req.workflow, images: req.images, signal }));
    return { ...outcome, externalId: json.id };
  }

  async cancel({ externalId }: { externalId: string | undefined }, signal: AbortSignal): Promise<boolean> {
    if (!externalId) return false;
    return runpodStopped(await callBackend(`${this.config.url}/cancel/${encodeURIComponent(externalId)}`, { method: "POST", headers: runpodHeaders(this.config) }, 10_000, signal));
  }

  /** worker-comfyui has no way to list its models: only the configured `models` are known. */
  async listModels(): Promise<ModelInfo[]> {
    return [];
  }
}

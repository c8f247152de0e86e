/** Cerebrium's `sd-img-2-img` predict endpoint (seed 004), synchronous or with a webhook. */
import { createHmac, randomUUID } from "node:crypto";
import { generate, Running, type Reply } from "./a1111";
import type { SimState } from "./state";

export interface CerebriumCall {
  body: Record<string, unknown>;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
}

const num = (v: unknown, fallback: number) => (typeof v === "number" && Number.isFinite(v) ? v : fallback);

export class CerebriumSim {
  private readonly running = new Running();

  constructor(private readonly state: SimState) {}

  /** Sync: the result in the answer. With `webhookEndpoint`: `run_id` at once, the result POSTed there. */
  async predict(call: CerebriumCall): Promise<Reply> {
    const { body } = call;
    if (typeof body.prompt !== "string") return { status: 422, body: { message: "prompt is required" } };
    let image = typeof body.image === "string" ? body.image : undefined;
    if (!image && typeof body.file_url === "string") {
      try {
        const res = await fetch(body.file_url, { signal: AbortSignal.timeout(10_000) });
        image = Buffer.from(await res.arrayBuffer()).toString("base64");
      } catch {
        return { status: 400, body: { message: "could not fetch file_url" } };
      }
    }
    if (!image) return { status: 422, body: { message: "image or file_url is required" } };
    const runId = randomUUID();
    const a1111 = {
      prompt: body.prompt,
      negative_prompt: typeof body.negative_prompt === "string" ? body.negative_prompt : "",
      init_images: [image],
      steps: num(body.num_inference_steps, 50),
      cfg_scale: num(body.guidance_scale, 7.5),
      batch_size: num(body.num_images_per_prompt, 1),
      seed: num(body.seed, -1),
      denoising_strength: num(body.strength, 0.8),
      width: num(body.width, 512),
      height: num(body.height, 512),
    };
    const webhook = call.query.get("webhookEndpoint");
    if (webhook) {
      const secret = header(call.headers, "x-webhook-secret");
      void this.run(a1111).then((reply) => this.callback(webhook, runId, secret, reply));
      return { status: 202, body: { run_id: runId, message: "Request accepted; the result will be sent to the webhook" } };
    }
    const reply = await this.run(a1111);
    return typeof reply === "string" ? reply : { status: reply.status, body: shape(runId, reply) };
  }

  private run(a1111: Record<string, unknown>): Promise<Reply> {
    return generate(this.state, "cerebrium", "img2img", a1111, this.running);
  }

  /**
   * One POST, no retry on a 5xx (as Cerebrium's docs say), signed when a secret was given:
   * `X-Cerebrium-Webhook-Signature: v1,<hex HMAC-SHA256 of "{request_id}.{timestamp}.{body}">`.
   */
  private async callback(url: string, runId: string, secret: string | undefined, reply: Reply): Promise<void> {
    if (this.state.faults("cerebrium").dropWebhooks || typeof reply === "string") return;
    const body = JSON.stringify(shape(runId, reply));
    const timestamp = String(Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = { "content-type": "application/json", "x-cerebrium-request-id": runId, "x-cerebrium-webhook-timestamp": timestamp };
    if (secret) headers["x-cerebrium-webhook-signature"] = `v1,${createHmac("sha256", secret).update(`${runId}.${timestamp}.${body}`).digest("hex")}`;
    await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    this.state.stats.webhooksSent++;
  }
}

function header(h: CerebriumCall["headers"], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Cerebrium's answer: `{run_id, message, result: [base64]}`, or its error shape. */
function shape(runId: string, reply: { status: number; body: unknown }): Record<string, unknown> {
  const b = (reply.body ?? {}) as Record<string, unknown>;
  if (reply.status !== 200) return { run_id: runId, message: String(b.errors ?? b.error ?? "generation failed"), result: null };
  return { run_id: runId, message: "Successfully generated image", result: Array.isArray(b.images) ? b.images : [] };
}

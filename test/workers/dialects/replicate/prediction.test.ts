import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { toPrediction } from "../../../../src/dialects/replicate/prediction";
import { verifyOutputLink } from "../../../../src/storage/links";
import { RUN_ID, snapshot } from "../support";

const data = { model: "stability-ai/sdxl", version: "a".repeat(64), input: { prompt: "apple" } };

describe("canonical job → Replicate prediction", () => {
  it("a succeeded job: signed output links, metrics in seconds, string urls, typed as the Python client checks", async () => {
    const p = await toPrediction(env, snapshot({ dialect: "replicate", dialect_data: data }));
    expect(p).toMatchObject({
      id: RUN_ID,
      model: "stability-ai/sdxl",
      version: "a".repeat(64),
      input: { prompt: "apple" },
      status: "succeeded",
      error: null,
      // Its last progress line stays, at 100%: the clients read a finished prediction's progress as whole.
      logs: "100%|██████████| 20/20\n",
      data_removed: false,
      created_at: "2026-05-04T10:20:30.000Z",
      completed_at: "2026-05-04T10:20:33.500Z",
      urls: { get: `http://gateway.test/v1/predictions/${RUN_ID}`, cancel: `http://gateway.test/v1/predictions/${RUN_ID}/cancel`, web: `http://gateway.test/dashboard#/jobs/${RUN_ID}` },
      metrics: { predict_time: 2.5, total_time: 3.5 },
    });
    const output = p.output as string[];
    expect(output).toHaveLength(2);
    for (const [i, link] of output.entries()) {
      const url = new URL(link);
      expect(url.origin).toBe("http://gateway.test");
      expect(await verifyOutputLink(["test-signing-secret"], `outputs/${RUN_ID}/image_${i}.png`, url.searchParams.get("expires") ?? "", url.searchParams.get("sig") ?? "")).toBe(true);
      // Valid at least 7 days.
      expect(Number(url.searchParams.get("expires")) * 1000 - Date.now()).toBeGreaterThanOrEqual(7 * 24 * 3600_000 - 60_000);
    }
  });

  it("maps the states; a failure's error is a string, a cancel's null; no output before success", async () => {
    const expected = { queued: "starting", running: "processing", succeeded: "succeeded", failed: "failed", canceled: "canceled" } as const;
    for (const [status, replicate] of Object.entries(expected)) {
      const p = await toPrediction(env, snapshot({ status: status as keyof typeof expected, dialect: "replicate", dialect_data: data, error: status === "failed" ? { code: "backend_failed", message: "boom" } : null }));
      expect(p.status).toBe(replicate);
      if (status !== "succeeded") expect(p.output).toBeNull();
      expect(p.error).toBe(status === "failed" ? "boom" : null);
    }
  });

  it("an answer to Prefer: wait before the end says starting, which the clients read as 'poll on'", async () => {
    expect((await toPrediction(env, snapshot({ status: "running", dialect: "replicate", dialect_data: data }), { starting: true })).status).toBe("starting");
    expect((await toPrediction(env, snapshot({ status: "failed", dialect: "replicate", dialect_data: data, error: { code: "x", message: "y" } }), { starting: true })).status).toBe("failed");
  });

  it("live progress shows in logs as a tqdm line, the form the Python client parses into prediction.progress", async () => {
    const running = snapshot({ status: "running", dialect: "replicate", dialect_data: data });
    running.job.progress = { fraction: 0.4, step: 12, steps: 30, eta_s: 3 };
    const logs = String((await toPrediction(env, running)).logs);
    // replicate-python's Prediction.Progress pattern.
    const m = logs.trim().match(/^\s*(?<percentage>\d+)%\s*\|.+?\|\s*(?<current>\d+)\/(?<total>\d+)/);
    expect(m?.groups).toEqual({ percentage: "40", current: "12", total: "30" });
  });

  it("a running prediction has no metrics yet", async () => {
    expect((await toPrediction(env, snapshot({ status: "running", dialect: "replicate", dialect_data: data }))).metrics).toEqual({});
  });
});

/**
 * The soak's cancels (bench/soak.ts): every `--cancel-every`-th job through `/v1` soon after it is
 * accepted, and with `--cancel-storm` one job in ten more through its own API (RunPod's
 * `/runpod/cancel`, Replicate's `/v1/predictions/…/cancel`, `/v1` for the rest), half at once and half while it may be running. A cancel
 * answered "canceled" is a promise: that job must end canceled.
 */
import type { Answer } from "./soak-client";
import { sleep } from "./soak-client";
import type { Accepted } from "./soak-jobs";

type Send = (path: string, init?: RequestInit) => Promise<Answer | null>;
type Auth = (j: Accepted) => Record<string, string>;

/** A storm cancel and what its answer said the job now is. */
export interface StormCancel {
  job: Accepted;
  when: "now" | "mid";
  /** The status the answer gave ("canceled", RunPod's "CANCELLED", or the state of a job that had ended); undefined while unanswered. */
  said?: string;
}

export function cancels(o: { send: Send; authOf: Auth; every: number; storm: boolean }) {
  const pending: Promise<void>[] = [];
  const storm: StormCancel[] = [];
  let canceledOk = 0;

  /** Sends the cancel until it is answered below 500 (bounded), and hands back that answer. */
  async function cancelUntilAnswered(path: string, job: Accepted): Promise<Answer | null> {
    for (let i = 0; i < 60; i++) {
      const res = await o.send(path, { method: "POST", headers: o.authOf(job) });
      if (res && res.status < 500) return res;
      await sleep(1000);
    }
    return null;
  }

  function everyNth(job: Accepted): void {
    pending.push(
      (async () => {
        await sleep(Math.random() * 1500);
        if ((await cancelUntilAnswered(`/v1/jobs/${job.runId}/cancel`, job))?.status === 200) canceledOk++;
      })(),
    );
  }

  function stormed(job: Accepted, when: StormCancel["when"]): void {
    const entry: StormCancel = { job, when };
    storm.push(entry);
    pending.push(
      (async () => {
        // "mid": the soak's jobs take about a second, so later would mostly find them ended.
        await sleep(when === "now" ? Math.random() * 200 : 300 + Math.random() * 2700);
        const path = job.kind.startsWith("runpod") ? `/runpod/cancel/${job.runId}` : job.kind === "replicate" ? `/v1/predictions/${job.runId}/cancel` : `/v1/jobs/${job.runId}/cancel`;
        const res = await cancelUntilAnswered(path, job);
        if (res?.status === 200) entry.said = String((res.json as { status?: unknown }).status ?? "");
      })(),
    );
  }

  /** Called once per accepted job: schedules the cancels this job gets. */
  function onAccepted(job: Accepted): void {
    const n = Number(job.tag.slice(1));
    if (n % o.every === 7 % o.every) everyNth(job);
    // One in ten (n ending in 3), alternately at once and mid-run; never a job canceled above.
    else if (o.storm && n % 10 === 3) stormed(job, n % 20 === 3 ? "now" : "mid");
  }

  return { onAccepted, pending, storm, canceledOk: () => canceledOk };
}

/** Storm cancels answered as canceled whose job ended otherwise: each one a broken promise. */
export function brokenCancels(storm: StormCancel[], statusOf: (runId: string) => string | undefined): StormCancel[] {
  return storm.filter((c) => (c.said === "canceled" || c.said === "CANCELLED") && statusOf(c.job.runId) !== "canceled");
}

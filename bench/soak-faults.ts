/**
 * The soak's faults on a timeline relative to the submit window (bench/soak.ts): the spare
 * backend's outage (RunPod's webhooks lost meanwhile), optionally RunPod's COMPLETED-with-error
 * spells, and the gateway's hard kills.
 */
import type { GatewayProcess, SimulatorProcess } from "../test/e2e/support/processes";
import { RESTART_GRACE_MS, sleep } from "./soak-client";
import type { OUTAGE } from "./soak-options";

/** The spare A1111 out for `downMs` from 15% of the window; meanwhile RunPod's completion webhooks are lost, so its jobs end by the status polls alone. */
export async function backendOutage(o: { spare: SimulatorProcess; cloud: SimulatorProcess; outage: typeof OUTAGE; windowMs: number; downMs: number }): Promise<void> {
  await sleep(o.windowMs * 0.15);
  await Promise.all([o.spare.config({ a1111: o.outage.during }), o.cloud.config({ runpod: { dropWebhooks: true } })]);
  await sleep(o.downMs);
  await Promise.all([o.spare.config({ a1111: o.outage.after }), o.cloud.config({ runpod: { dropWebhooks: false } })]);
}

/**
 * RunPod answers COMPLETED with an A1111 error inside for 3 s of every 12 s over the window (at
 * least once): a failure in disguise, which must fail the attempt over like any other failure.
 */
export async function runpodCompletedErrors(cloud: SimulatorProcess, windowMs: number): Promise<void> {
  const spells = Math.max(1, Math.floor(windowMs / 12_000));
  for (let i = 0; i < spells; i++) {
    await sleep(9_000);
    await cloud.config({ runpod: { runpodOutputError: true } });
    await sleep(3_000);
    await cloud.config({ runpod: { runpodOutputError: false } });
  }
}

/** Hard kills (SIGKILL to the process group) and restarts on the same state; each restart's window goes into `restarts`. */
export async function hardKills(o: { gw: GatewayProcess; kills: number; start: number; windowMs: number; restarts: { from: number; to: number }[] }): Promise<void> {
  // Two kills at 30% and 65% of the window by default; more are spread between 10% and 90%.
  const killAt = o.kills === 2 ? [0.3, 0.65] : Array.from({ length: o.kills }, (_, i) => 0.1 + (0.8 * i) / Math.max(1, o.kills - 1));
  for (const [i, at] of killAt.entries()) {
    await sleep(Math.max(i === 0 ? 0 : 3_000, o.start + o.windowMs * at - Date.now()));
    const from = Date.now();
    await o.gw.kill();
    await o.gw.start();
    o.restarts.push({ from, to: Date.now() + RESTART_GRACE_MS });
  }
}

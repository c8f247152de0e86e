/** A completion callback from an asynchronous backend, checked against the attempt it names. */
import { adapterFor } from "../../src/backends";
import type { CallbackSource } from "../../src/backends/types";
import { config } from "../../src/config";
import type { CallbackBody } from "../../src/contracts/job";
import { textStream } from "../../src/lib/json-stream";
import { timingSafeEqual } from "../../src/lib/crypto";
import { OutputStore } from "../../src/storage/images";
import { taskIdOf } from "./progress";
import type { JobRoom } from "./room";
import type { Settler } from "./settle";
import { parseInput } from "./tables";
import { workflowOutputs } from "./view";
import { withDeadline } from "../../src/lib/deadline";

/** What a callback did: `settled` when it gave the attempt its outcome (what follows should go out now). */
export type CallbackResult = { accepted: boolean; settled?: boolean };

/** A forged or replayed callback changes nothing. */
export async function takeCallback(room: JobRoom, settler: Settler, attemptN: number, token: string, headers: [string, string][], staged: CallbackBody): Promise<CallbackResult> {
  const { ctx, env, ledger } = room;
  try {
    // A job deleted after RETENTION_S is not brought back by a late callback.
    if (!ledger.row()) return { accepted: false };
    const attempt = ledger.currentAttempt();
    // A fast backend's callback can overtake the answer to the submit itself: `running` counts too.
    if (!attempt || attempt.n !== attemptN || !timingSafeEqual(attempt.token, token)) return { accepted: false };
    const backend = config.backend(env, attempt.backend);
    if (!backend) return { accepted: false };
    const input = parseInput(ledger.mustRow());
    const images = new OutputStore(env.IMAGES, input.output_prefix);
    const outcome = await adapterFor(backend)
      .callback({ headers: new Headers(headers), body: callbackSource(env, staged), secret: attempt.token, samples: input.spec.samples, upscale: input.spec.type === "upscale", workflow: workflowOutputs(env, input, taskIdOf(ledger.mustRow().id, attempt.n)), images })
      .catch(() => undefined);
    if (!outcome) return { accepted: false };
    const reported = outcome.externalId;
    if (reported !== undefined && attempt.external_id !== null && reported !== attempt.external_id) {
      // A second backend job for one attempt (a submit the backend took twice): stopped at once, its result not the job's.
      const ref = { externalId: reported, taskId: taskIdOf(ledger.mustRow().id, attempt.n) };
      ctx.waitUntil(withDeadline(10_000, (signal) => adapterFor(backend).cancel(ref, signal)).catch(() => undefined));
      ctx.waitUntil(images.discardExcept([]).catch(() => undefined));
      ledger.event("attempt.duplicate_canceled", { attempt: attempt.n, backend: backend.name, external_id: reported }, Date.now());
      return { accepted: true };
    }
    // A submit whose answer was lost (see lost-call.ts): the callback says which job is the attempt's.
    if (reported !== undefined && attempt.external_id === null) ledger.setExternalId(attempt.n, reported);
    if (outcome.kind === "pending") return { accepted: true };
    await settler.settle(attempt.n, backend, outcome, images);
    return { accepted: true, settled: true };
  } finally {
    if ("staged" in staged) ctx.waitUntil(env.IMAGES.delete(staged.staged));
  }
}

/** A callback body, inline or staged in R2 by the Worker (a large one): read as a stream, as often as the adapter needs. */
function callbackSource(env: JobRoom["env"], staged: CallbackBody): CallbackSource {
  return {
    open: async () => {
      if ("text" in staged) return textStream(staged.text);
      const obj = await env.IMAGES.get(staged.staged);
      return obj?.body ?? textStream("");
    },
  };
}

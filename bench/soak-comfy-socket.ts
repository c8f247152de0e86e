/**
 * With `--fronts all`, each tenant's ComfyUI socket (`/ws?clientId=…`), kept open as a ComfyUI
 * client keeps it: opened again after each restart, the prompts whose end it told kept. Printed,
 * not a must-be-zero figure: a message sent while the gateway was down or the socket reopening is
 * not sent again, as with ComfyUI itself; the prompt's webhook and history are what must hold.
 */
import { openSocket, type TestSocket } from "../test/e2e/support/websocket";
import { sleep } from "./soak-client";
import { comfyClientId } from "./soak-jobs";

const ENDS = new Set(["execution_success", "execution_error", "execution_interrupted"]);

/** `restarts()`: how many restarts so far (a socket open across one is dead); `until`: the watch's hard end. */
export function watchComfySockets(o: { base: string; keys: readonly string[]; restarts: () => number; until: number }) {
  const ended = new Set<string>();
  let stopped = false;
  const watching = () => !stopped && Date.now() < o.until;

  async function keep(tenant: 0 | 1): Promise<void> {
    while (watching()) {
      const restartsAtOpen = o.restarts();
      const socket: TestSocket | undefined = await openSocket(`${o.base.replace(/^http/, "ws")}/ws?clientId=${comfyClientId(tenant)}&token=${o.keys[tenant]}`).catch(() => undefined);
      let seen = 0;
      for (;;) {
        for (; socket && seen < socket.messages.length; seen++) {
          const m = socket.messages[seen];
          if (m && ENDS.has(m.type) && typeof m.data.prompt_id === "string") ended.add(m.data.prompt_id);
        }
        // A restart cut it (the socket itself does not say so), or the watch is over.
        if (!socket || !watching() || o.restarts() !== restartsAtOpen) break;
        await sleep(200);
      }
      socket?.close();
      if (watching()) await sleep(500);
    }
  }

  const loops = [keep(0), keep(1)];
  return {
    ended,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

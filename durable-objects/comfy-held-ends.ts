/**
 * The closing message of a tenant's succeeded prompts (`execution_success`), held while another
 * prompt of the same audience runs. ComfyUI runs one prompt at a time, and
 * clients rely on it: @saintno/comfyui-sdk's CallWrapper takes any `execution_success` on its
 * socket as its own prompt's end and fails if its outputs have not come. Easel runs a client's
 * prompts side by side, so a short prompt's end would fail a long one's call. Held in the object's
 * storage, so a restart or hibernation loses none; each is sent once no prompt of its audience
 * runs, or after the longest a prompt can run (its end notice was lost), whichever comes first.
 */
import { MAX_TIMEOUT_S } from "../src/schemas/job";

export const HELD_SCHEMA = `
CREATE TABLE IF NOT EXISTS held_ends (
  prompt_id TEXT PRIMARY KEY,
  client_id TEXT,
  messages TEXT NOT NULL,
  held_at INTEGER NOT NULL
);
`;

/** No prompt runs longer than its job's timeout (counted from submission): past it, the other prompt's end was lost. */
const HOLD_MAX_MS = MAX_TIMEOUT_S * 1000 + 60_000;
/** Held at most this many at once; beyond it the oldest goes out early rather than storage growing. */
const MAX_HELD = 1_000;

type Held = { prompt_id: string; client_id: string | null; messages: string; held_at: number };

export class HeldEnds {
  constructor(
    /** The object's tables, made (HELD_SCHEMA included) on first use. */
    private readonly sql: () => SqlStorage,
    /** Sends messages to a prompt's audience: its client's sockets, or every socket for a prompt without one. */
    private readonly send: (clientId: string | null, messages: string[]) => void,
  ) {}

  /**
   * A prompt's audience is busy while another prompt it hears of runs: its client's, or for a prompt
   * without a client (heard by every socket), any. Call after the ending prompt is marked ended.
   */
  private busy(clientId: string | null): boolean {
    const query = clientId ? "SELECT COUNT(*) AS n FROM prompts WHERE state = 'running' AND client_id = ?" : "SELECT COUNT(*) AS n FROM prompts WHERE state = 'running'";
    return this.sql().exec<{ n: number }>(query, ...(clientId ? [clientId] : [])).one().n > 0;
  }

  /**
   * Sends an ended prompt's closing messages now, then `after`; or holds them while its audience
   * is busy, and sends `after` at once.
   */
  close(prompt: { prompt_id: string; client_id: string | null }, closing: string[], after: string[] = []): void {
    if (!closing.length || !this.busy(prompt.client_id)) return this.send(prompt.client_id, [...closing, ...after]);
    if (after.length) this.send(prompt.client_id, after);
    this.sql().exec("INSERT OR REPLACE INTO held_ends (prompt_id, client_id, messages, held_at) VALUES (?, ?, ?, ?)", prompt.prompt_id, prompt.client_id, JSON.stringify(closing), Date.now());
  }

  /** Sends, oldest first, what no running prompt holds back any more (after any prompt ended, and at the alarm). */
  release(): void {
    const sql = this.sql();
    const held = sql.exec<Held>("SELECT * FROM held_ends ORDER BY held_at, prompt_id").toArray();
    const now = Date.now();
    let over = held.length - MAX_HELD;
    for (const h of held) {
      if (over-- <= 0 && now < h.held_at + HOLD_MAX_MS && this.busy(h.client_id)) continue;
      sql.exec("DELETE FROM held_ends WHERE prompt_id = ?", h.prompt_id);
      this.send(h.client_id, JSON.parse(h.messages) as string[]);
    }
  }

  /** When the oldest held message must go out whatever runs; null when none is held. */
  due(): number | null {
    const at = this.sql().exec<{ at: number | null }>("SELECT MIN(held_at) AS at FROM held_ends").one().at;
    return at === null ? null : at + HOLD_MAX_MS;
  }
}

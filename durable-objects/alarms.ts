/**
 * An object's one alarm, moved only earlier: each timer it serves asks for "no later than". The
 * alarm handler sets it afresh for what is left.
 */

/**
 * A set alarm this far past has been lost rather than delayed: workerd under `wrangler dev`, killed
 * hard, keeps the alarm's time in the object's storage but not its schedule, and an alarm that
 * never fires would stop every timer of the object for good (a "no later than" never replaces an
 * earlier time).
 */
export const LOST_ALARM_MS = 5_000;

/**
 * The alarm no later than `at`: moved only when set later or not at all. One already past by more
 * than LOST_ALARM_MS is set again to fire now: its handler does what is due and sets what comes next
 * (alarm handlers are idempotent, so a delayed alarm that does fire as well costs one empty run).
 */
export async function alarmBy(storage: Pick<DurableObjectStorage, "getAlarm" | "setAlarm">, at: number): Promise<void> {
  const set = await storage.getAlarm();
  const now = Date.now();
  if (set !== null && set < now - LOST_ALARM_MS) await storage.setAlarm(now);
  else if (set === null || set > at) await storage.setAlarm(at);
}

/**
 * A1111's task bookkeeping: each generation runs under the id the client forced
 * (`force_task_id`), queued behind A1111's one-at-a-time lock when `serial` is on, and
 * `POST /internal/progress {"id_task"}` tells whether that task is queued, active or completed.
 */
export class A1111Tasks {
  private readonly states = new Map<string, "queued" | "active" | "completed">();
  private lock: Promise<void> = Promise.resolve();

  /** Waits for the task's turn (when serial) and marks it active; the returned function completes it. */
  async start(taskId: string | undefined, serial: boolean): Promise<() => void> {
    const id = taskId ?? `task(${Math.random().toString(36).slice(2)})`;
    this.states.set(id, "queued");
    let release = () => undefined as unknown;
    if (serial) {
      const previous = this.lock;
      this.lock = new Promise<void>((r) => (release = r));
      await previous;
    }
    this.states.set(id, "active");
    return () => {
      this.states.set(id, "completed");
      release();
    };
  }

  /** The answer of A1111's `/internal/progress` for one task. */
  progress(taskId: unknown) {
    const state = typeof taskId === "string" ? this.states.get(taskId) : undefined;
    return {
      active: state === "active",
      queued: state === "queued",
      completed: state === "completed",
      progress: state === "completed" ? 1 : null,
      eta: null,
      live_preview: null,
      id_live_preview: -1,
      textinfo: state === "queued" ? "In queue..." : state === "active" ? "Generating..." : state === "completed" ? "Done" : "Waiting...",
    };
  }
}

/**
 * The time and timers the control logic (supervisor, per-peer sender, resync,
 * write queue, expiry sweep) runs on. The running node passes `nodeRuntime`,
 * Node's own timers and `performance.now()`; the simulator (test/sim/) passes
 * virtual ones, so a whole cluster runs in one process from a seed, without
 * sleeping, and every run replays exactly. Wall-clock time is not here: each
 * node's wall clock is its own dependency (`wallMs`), since clocks drift and
 * jump per node.
 */

/** An opaque handle of a pending timer. */
export type TimerHandle = object;

export interface Runtime {
  /** Monotonic milliseconds (performance.now()): for durations and deadlines only. */
  monoMs(): number;
  /** `unref`: the timer does not keep the process alive (Node's `timer.unref()`). */
  setTimeout(callback: () => void, delayMs: number, unref?: boolean): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(callback: () => void, periodMs: number, unref?: boolean): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
  /** Runs `callback` on the next turn, after what is queued now. */
  setImmediate(callback: () => void): void;
  /** Resolves after `delayMs`. */
  sleep(delayMs: number): Promise<void>;
}

export const nodeRuntime: Runtime = {
  monoMs: () => performance.now(),
  setTimeout: (callback, delayMs, unref = false) => {
    const timer = setTimeout(callback, delayMs);
    if (unref) timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
  setInterval: (callback, periodMs, unref = false) => {
    const timer = setInterval(callback, periodMs);
    if (unref) timer.unref();
    return timer;
  },
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout | undefined),
  setImmediate: (callback) => {
    setImmediate(callback);
  },
  sleep: (delayMs) => new Promise((resolve) => setTimeout(resolve, delayMs)),
};

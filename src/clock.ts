/**
 * Hybrid logical clock. A timestamp is one integer: wall-clock milliseconds
 * times 1024 plus a logical counter, so it orders like (ms, counter), stays a
 * safe JavaScript integer until the year 2248, and fits a SQLite INTEGER.
 *
 * - `now()` is strictly greater than every timestamp this clock has issued or
 *   observed, and never behind the wall clock.
 * - `observe(t)` folds in a timestamp seen from a peer, so the next local
 *   write orders after it even when this node's wall clock lags.
 */
export const LOGICAL_PER_MS = 1024;

export type WallClock = () => number;

export class HybridClock {
  #last: number;
  readonly #wallMs: WallClock;

  constructor(wallMs: WallClock, last = 0) {
    this.#wallMs = wallMs;
    this.#last = last;
  }

  now(): number {
    const physical = Math.floor(this.#wallMs()) * LOGICAL_PER_MS;
    this.#last = Math.max(this.#last + 1, physical);
    return this.#last;
  }

  observe(timestamp: number): void {
    if (timestamp > this.#last) this.#last = Math.min(timestamp, TIMESTAMP_MAX);
  }

  /** The highest timestamp issued or observed so far. */
  get last(): number {
    return this.#last;
  }

  /** Wall-clock milliseconds as this node sees them (skew included). */
  wallMs(): number {
    return this.#wallMs();
  }
}

export function timestampToMs(timestamp: number): number {
  return Math.floor(timestamp / LOGICAL_PER_MS);
}

/**
 * The largest timestamp accepted at all (year ~2248), with headroom so that
 * `now()` after observing it stays a safe integer.
 */
export const TIMESTAMP_MAX = Number.MAX_SAFE_INTEGER - 2 ** 32;

/** How far ahead of our wall clock a peer's version may be: a day. */
export const FUTURE_MS_MAX = 86_400_000;

/** The largest timestamp a peer may send now, given our wall clock. */
export function timestampMaxAt(wallMs: number): number {
  return Math.min(TIMESTAMP_MAX, Math.floor(wallMs + FUTURE_MS_MAX) * LOGICAL_PER_MS);
}

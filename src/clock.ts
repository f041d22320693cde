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
  /** The highest timestamp `now()` issued (or restored from our own history). */
  #issuedMax = 0;
  /**
   * Timestamps issued by `after()` beyond the clock (a write that must order
   * after a far-future version the clock is capped below) lie in [low, high];
   * `now()` steps over that range, so none is issued twice. Empty: high 0.
   */
  #borrowedLow = 0;
  #borrowedHigh = 0;
  readonly #wallMs: WallClock;
  readonly #aheadMsMax: () => number;
  readonly #vouchedMax: () => number;

  /**
   * `aheadMsMax` caps how far an observed timestamp may move this clock past
   * the wall clock (default: a day), so one version from the future cannot
   * stamp every later write far ahead. `vouchedMax` is the highest timestamp
   * a peer's clock has reached (its ping says so): versions up to it were
   * accepted somewhere in the cluster under that node's own bound, so they
   * stay acceptable here even after the clock that wrote them was set back.
   */
  constructor(
    wallMs: WallClock,
    last = 0,
    aheadMsMax: () => number = () => FUTURE_MS_MAX,
    vouchedMax: () => number = () => 0,
  ) {
    this.#wallMs = wallMs;
    this.#last = last;
    this.#aheadMsMax = aheadMsMax;
    this.#vouchedMax = vouchedMax;
  }

  now(): number {
    const physical = Math.floor(this.#wallMs()) * LOGICAL_PER_MS;
    let next = Math.max(this.#last + 1, physical);
    if (this.#borrowedHigh > 0 && next >= this.#borrowedLow && next <= this.#borrowedHigh) {
      next = this.#borrowedHigh + 1;
    }
    if (next > this.#borrowedHigh) this.#borrowedLow = this.#borrowedHigh = 0;
    this.#last = next;
    this.#issuedMax = this.#last;
    return this.#last;
  }

  /**
   * A timestamp greater than `floor` (a version the key holds) that no other
   * call issues: `now()` when it is past `floor`; otherwise one above `floor`
   * (and above every earlier such one) without moving the clock there, so a
   * far-future version does not drag every later write with it. `now()`
   * steps over these when the wall clock reaches them.
   */
  after(floor: number): number {
    const now = this.now();
    if (now > floor) return now;
    const borrowed = Math.max(floor + 1, this.#borrowedHigh + 1);
    if (this.#borrowedHigh === 0) this.#borrowedLow = borrowed;
    this.#borrowedHigh = borrowed;
    return borrowed;
  }

  /** The range `after()` issued beyond the clock ("low:high"; "0:0" when empty), to persist. */
  get borrowed(): string {
    return `${this.#borrowedLow}:${this.#borrowedHigh}`;
  }

  /** Restores a persisted `borrowed` range after a restart. */
  restoreBorrowed(range: string | undefined): void {
    const [low, high] = (range ?? '0:0').split(':').map(Number);
    if (!Number.isSafeInteger(low) || !Number.isSafeInteger(high) || high! <= this.#borrowedHigh) {
      return;
    }
    this.#borrowedLow = this.#borrowedHigh === 0 ? low! : Math.min(low!, this.#borrowedLow);
    this.#borrowedHigh = high!;
  }

  observe(timestamp: number): void {
    const cap = Math.min(TIMESTAMP_MAX, this.timestampMax());
    if (timestamp > this.#last) this.#last = Math.max(this.#last, Math.min(timestamp, cap));
  }

  /**
   * Folds in a timestamp this node issued itself before a restart, uncapped:
   * versions must stay unique even when the wall clock went back meanwhile.
   */
  restoreIssued(timestamp: number): void {
    const restored = Math.min(timestamp, TIMESTAMP_MAX);
    if (restored > this.#last) this.#last = restored;
    if (restored > this.#issuedMax) this.#issuedMax = restored;
  }

  /** The highest timestamp `now()` has issued (or `restoreIssued` restored). */
  get issuedMax(): number {
    return this.#issuedMax;
  }

  /**
   * The highest timestamp this clock will accept from outside right now: the
   * wall clock plus the allowed lead, or a timestamp this clock or a peer's
   * already reached, never more than a day ahead of the wall clock.
   */
  timestampMax(): number {
    const wallMs = this.#wallMs();
    const known = Math.max(this.#last, this.#vouchedMax());
    return Math.max(
      timestampMaxAt(wallMs, this.#aheadMsMax()),
      Math.min(known, timestampMaxAt(wallMs, FUTURE_MS_MAX)),
    );
  }

  /** How far the clock runs ahead of the wall clock, in ms (0 when it does not). */
  aheadOfWallMs(): number {
    return Math.max(0, timestampToMs(this.#last) - Math.floor(this.#wallMs()));
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

/** The most a clock may ever be allowed to run ahead of the wall clock: a day. */
export const FUTURE_MS_MAX = 86_400_000;

/** The largest timestamp a peer may send now, given our wall clock and how far ahead we allow. */
export function timestampMaxAt(wallMs: number, aheadMs: number = FUTURE_MS_MAX): number {
  const ahead = Math.min(Math.max(0, aheadMs), FUTURE_MS_MAX);
  return Math.min(TIMESTAMP_MAX, Math.floor(wallMs + ahead) * LOGICAL_PER_MS + LOGICAL_PER_MS - 1);
}

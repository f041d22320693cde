/**
 * The failover decisions, as pure functions of an attempt's outcome, the
 * attempt number and a random source: which outcomes move on to the next
 * node, and how long to wait before the next attempt (capped exponential
 * backoff with full jitter, never past the call's deadline).
 */

export interface BackoffOptions {
  /** First retry waits up to this long; each later one doubles it... */
  readonly backoffMsMin: number;
  /** ...up to this cap. */
  readonly backoffMsMax: number;
}

/** Statuses that mean "this node cannot serve now, another may": overloaded or shutting down. */
const RETRYABLE_STATUSES = new Set([502, 503, 504]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/**
 * The wait before retry number `retry` (1 for the first retry): a uniform
 * draw in [0, min(max, min * 2^(retry-1))] ("full jitter"), so clients that
 * failed together do not come back together. A `Retry-After` from the node
 * raises the floor, still under the cap.
 */
export function backoffDelayMs(
  retry: number,
  random: () => number,
  options: BackoffOptions,
  retryAfterMs = 0,
): number {
  const ceiling = Math.min(
    options.backoffMsMax,
    options.backoffMsMin * 2 ** Math.max(0, retry - 1),
  );
  const jittered = Math.floor(random() * ceiling);
  return Math.min(options.backoffMsMax, Math.max(jittered, retryAfterMs));
}

/** Parses a Retry-After header given in seconds (the only form peerkv sends). */
export function retryAfterMs(header: string | string[] | undefined): number {
  const text = Array.isArray(header) ? header[0] : header;
  if (text === undefined || !/^\d{1,6}$/.test(text.trim())) return 0;
  return Number(text.trim()) * 1000;
}

/** Node indices in the order a call tries them: from `start`, wrapping around. */
export function nodeOrder(count: number, start: number): number[] {
  return Array.from({ length: count }, (_, offset) => (start + offset) % count);
}

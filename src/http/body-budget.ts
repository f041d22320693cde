/**
 * The node-wide budget of request-body bytes being read and parsed. Every
 * body reader takes its bytes from it as they arrive and gives them back once
 * the body is parsed; a body that would pass the budget is refused with 503
 * and `Retry-After` (before reading, when its declared length already does
 * not fit), so many concurrent large bodies cost at most the budget, not the
 * sum of their sizes.
 */
import assert from 'node:assert/strict';
import { PeerkvError } from '../errors.ts';

export class BodyBudget {
  readonly bytesMax: number;
  #bytesUsed = 0;

  constructor(bytesMax: number) {
    assert.ok(Number.isSafeInteger(bytesMax) && bytesMax > 0, 'body budget must be positive');
    this.bytesMax = bytesMax;
  }

  get bytesUsed(): number {
    return this.#bytesUsed;
  }

  /** Whether `bytes` more would fit right now (nothing is taken). */
  fits(bytes: number): boolean {
    return this.#bytesUsed + bytes <= this.bytesMax;
  }

  /** Takes `bytes` from the budget, or returns false (and takes nothing) if they do not fit. */
  take(bytes: number): boolean {
    assert.ok(bytes >= 0, 'bytes taken must not be negative');
    if (!this.fits(bytes)) return false;
    this.#bytesUsed += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#bytesUsed -= bytes;
    assert.ok(this.#bytesUsed >= 0, 'body budget went negative');
  }
}

export function budgetSpent(): PeerkvError {
  return new PeerkvError('OVERLOADED', 'too many request bodies in flight, retry later', {
    headers: { 'Retry-After': '1', Connection: 'close' },
  });
}

/**
 * What a resync accepts from a peer, page by page. A peer is untrusted: it
 * could serve endless pages with fresh cursors, rows of buckets nobody asked
 * for, or a row every two seconds. A PageGuard holds one paged read (rows of a
 * set of buckets) to what the peer itself declared: at most the rows it
 * counted in those buckets (plus a margin for writes arriving meanwhile), each
 * row in a requested bucket and after the cursor, and each page moving the
 * cursor forward. Pure logic: no I/O, no clock.
 */
import { bucketOf } from '../store/digest.ts';
import type { BucketCursor } from './sync-wire.ts';

/** A peer's answer broke the resync protocol or its own declared counts. */
export class PeerBadAnswerError extends Error {
  readonly code = 'PEER_BAD_ANSWER';
  constructor(message: string) {
    super(message);
    this.name = 'PeerBadAnswerError';
  }
}

/** The rows a read may take beyond what the peer declared: writes that arrive during the resync. */
export function rowsAllowed(declared: number, marginMin: number, marginFraction: number): number {
  return declared + Math.max(marginMin, Math.ceil(declared * marginFraction));
}

export class PageGuard {
  readonly #position: Map<number, number>;
  readonly #rowsMax: number;
  #rows = 0;
  #cursor: { index: number; key: string } | null = null;

  /** `buckets` in the order they are asked for; `rowsMax` from the peer's declared counts. */
  constructor(buckets: readonly number[], rowsMax: number) {
    this.#position = new Map(buckets.map((bucket, index) => [bucket, index]));
    this.#rowsMax = rowsMax;
  }

  get rows(): number {
    return this.#rows;
  }

  /** Checks one page; throws PeerBadAnswerError when it breaks a bound. */
  accept(entries: readonly { readonly key: string }[], next: BucketCursor | null): void {
    this.#rows += entries.length;
    if (this.#rows > this.#rowsMax) {
      throw new PeerBadAnswerError(
        `peer sent ${this.#rows} rows, more than the ${this.#rowsMax} it declared (with margin)`,
      );
    }
    for (const entry of entries) {
      const index = this.#position.get(bucketOf(entry.key));
      if (index === undefined)
        throw new PeerBadAnswerError('peer sent a key outside the asked buckets');
      this.#advanceTo(index, entry.key, 'rows out of order');
    }
    if (next === null) return;
    if (entries.length === 0) throw new PeerBadAnswerError('peer sent an empty page with a cursor');
    const index = this.#position.get(next.bucket);
    if (index === undefined) throw new PeerBadAnswerError('peer cursor outside the asked buckets');
    if (!this.#atOrAfter(index, next.key)) throw new PeerBadAnswerError('peer cursor went back');
    this.#cursor = { index, key: next.key };
  }

  #advanceTo(index: number, key: string, what: string): void {
    if (this.#cursor && !this.#after(index, key)) throw new PeerBadAnswerError(`peer sent ${what}`);
    this.#cursor = { index, key };
  }

  #after(index: number, key: string): boolean {
    const cursor = this.#cursor;
    if (!cursor) return true;
    return index > cursor.index || (index === cursor.index && compareKeys(key, cursor.key) > 0);
  }

  #atOrAfter(index: number, key: string): boolean {
    const cursor = this.#cursor;
    return !cursor || this.#after(index, key) || (index === cursor.index && key === cursor.key);
  }
}

/** Keys in the order SQLite keeps them (BINARY collation: UTF-8 bytes), not UTF-16 units. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

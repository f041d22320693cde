/**
 * The entries point reads found lately, so a hot key is answered without a
 * SQLite lookup (a third of a read's cost on the node: bench/ANALYSIS.md).
 *
 * It holds what the row said, tombstones and expiries included; whether the
 * entry reads as live is still decided at each read. It is kept exact by the
 * store, which owns every write to the rows: each statement that changes a
 * row forgets its key before it runs, and a rolled-back transaction clears it
 * (a read inside the transaction may have cached what was never committed).
 * Bounded by entries and by value bytes; least recently read goes first.
 */
import type { Entry } from './types.ts';

export interface ReadCacheBounds {
  /** Entries held at most. */
  readonly entriesMax: number;
  /** Characters of value JSON held at most, all entries together. */
  readonly valueCharsMax: number;
  /** An entry whose value is longer than this is never held. */
  readonly entryValueCharsMax: number;
}

export class ReadCache {
  /** In order of last read: the first is the least recently read. */
  readonly #entries = new Map<string, Entry>();
  readonly #bounds: ReadCacheBounds;
  #valueChars = 0;
  #hits = 0;
  #misses = 0;

  constructor(bounds: ReadCacheBounds) {
    this.#bounds = bounds;
  }

  /** The entry held for `key`, or undefined (a miss: read the row, then `remember`). */
  lookup(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      this.#misses += 1;
      return undefined;
    }
    this.#hits += 1;
    // Move it to the end: the most recently read.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry;
  }

  remember(entry: Entry): void {
    const chars = entry.valueJson?.length ?? 0;
    if (chars > this.#bounds.entryValueCharsMax || this.#bounds.entriesMax === 0) return;
    this.forget(entry.key);
    this.#entries.set(entry.key, entry);
    this.#valueChars += chars;
    while (
      this.#entries.size > this.#bounds.entriesMax ||
      this.#valueChars > this.#bounds.valueCharsMax
    ) {
      const oldest = this.#entries.keys().next().value as string;
      this.forget(oldest);
    }
  }

  forget(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#valueChars -= entry.valueJson?.length ?? 0;
  }

  clear(): void {
    this.#entries.clear();
    this.#valueChars = 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  get valueChars(): number {
    return this.#valueChars;
  }

  /** Lookups answered from the cache and not, since the store opened. */
  get stats(): { readonly hits: number; readonly misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }
}

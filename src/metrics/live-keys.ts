/**
 * Counts live keys without scanning the store on the event loop. The start-up
 * digest scrub counts live rows in a worker, in one snapshot that also gives
 * the last change sequence it holds; every commit reports how it changed the
 * live count and the sequence it ended at. Commits the snapshot did not see
 * (ending past its sequence) are added to its count, so the result is exact
 * however many writes ran while the worker read. Tombstones are the digest's
 * entry count minus the live keys.
 */
import assert from 'node:assert/strict';
import type { Mutation, MutationResult } from '../store/types.ts';

/** Commits remembered while the count runs; past this the count is abandoned. */
const PENDING_COMMITS_MAX = 100_000;

export class LiveKeyCounter {
  #live: number | null = null;
  /** Commits since counting began: the sequence each ended at, and its live-count change. */
  #pending: { seq: number; delta: number }[] | null = [];

  /** Live keys, or null until the first count arrived. */
  get live(): number | null {
    return this.#live;
  }

  /** Records one commit: its mutations, their results, and the store sequence after it. */
  noteCommit(mutations: readonly Mutation[], results: readonly MutationResult[], seqAfter: number) {
    assert.equal(mutations.length, results.length, 'a result per mutation');
    let delta = 0;
    for (const [index, result] of results.entries()) {
      if (!result.applied) continue;
      const mutation = mutations[index]!;
      // Counts rows holding a value, as the worker's count does (an expired value not yet
      // swept still counts; the sweep's `expire` drops it).
      const liveAfter =
        mutation.kind === 'expire'
          ? false
          : (mutation.kind === 'local' ? mutation.valueJson : mutation.entry.valueJson) !== null;
      delta += Number(liveAfter) - Number(result.valueBefore ?? result.existed);
    }
    if (this.#live !== null) {
      this.#live += delta;
      assert.ok(this.#live >= 0, 'live key count went negative');
    } else if (this.#pending !== null) {
      if (this.#pending.length >= PENDING_COMMITS_MAX) this.#pending = null;
      else this.#pending.push({ seq: seqAfter, delta });
    }
  }

  /** The worker's count of `liveRows` in a snapshot holding changes up to `snapshotSeq`. */
  counted(liveRows: number, snapshotSeq: number): void {
    if (this.#live !== null || this.#pending === null) return;
    let live = liveRows;
    for (const commit of this.#pending) if (commit.seq > snapshotSeq) live += commit.delta;
    this.#live = live;
    this.#pending = null;
  }
}

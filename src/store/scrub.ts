/**
 * Digest scrub: a pool worker recomputes every bucket from the rows and reads
 * the persisted bucket table in the same snapshot; any bucket that disagrees
 * is corrected by the difference, which stays exact even though writes went
 * on while the worker read.
 */
import type { StorePool } from '../pool.ts';
import { addHash, BUCKETS, subtractHash } from './digest.ts';
import type { KvStore } from './kv-store.ts';

export interface ScrubResult {
  readonly repairedBuckets: number;
}

export async function scrubDigest(store: KvStore, pool: StorePool): Promise<ScrubResult> {
  const scan = await pool.scanDigest(store.dbPath);
  let repaired = 0;
  for (let bucket = 0; bucket < BUCKETS; bucket += 1) {
    const computed = scan.computedSums[bucket]!;
    const stored = scan.storedSums[bucket]!;
    const countDelta = scan.computedCounts[bucket]! - scan.storedCounts[bucket]!;
    if (computed === stored && countDelta === 0) continue;
    const sum = addHash(subtractHash(store.digest.sums[bucket]!, stored), computed);
    store.repairBucket(bucket, sum, store.digest.counts[bucket]! + countDelta);
    repaired += 1;
  }
  return { repairedBuckets: repaired };
}

// A resync's requests fit the body limits of the routes they call, however long the keys: two
// real stores, one resyncing against the other through the real peer handlers over an in-memory
// transport that holds each request to its route's body limit (as readJson does). Before the
// fix, 1,200 differing keys of 1,000 bytes went to POST /sync/fetch in one request of 1.2 MB,
// over the route's 1 MiB: 413, and the resync failed the same way at every retry.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { HybridClock } from '../../src/clock.ts';
import { limits, replicationLimits } from '../../src/limits.ts';
import { bucketOf } from '../../src/store/digest.ts';
import { KvStore } from '../../src/store/kv-store.ts';
import { FETCH_BODY_FRAMING_BYTES, fetchBatch, Resync } from '../../src/sync/resync.ts';
import { resyncDeps, transportTo } from './resync-fixture.ts';
import { dumpContent, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

/**
 * Long keys that all fall in the first 64 buckets: one resync round holds at most 64 buckets,
 * so this puts every differing key into one round (a large store does the same with many keys
 * per bucket).
 */
function keysInFirstBuckets(count: number, padBytes: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i += 1) {
    const key = `${String(i).padStart(6, '0')}/${'k'.repeat(padBytes)}`;
    if (bucketOf(key) < replicationLimits.resyncBucketsPerRound) keys.push(key);
  }
  return keys;
}

describe('resync request sizes', () => {
  test('a resync fetching 1,200 keys of 1,000 bytes splits its fetches to fit the route', async () => {
    const clockA = new HybridClock(() => Date.now());
    const clockB = new HybridClock(() => Date.now() + 5_000);
    const a = new KvStore(dirs.newDir(), 'normal', clockA);
    const b = new KvStore(dirs.newDir(), 'normal', clockB);
    const keys = keysInFirstBuckets(1_200, 994);
    // Both hold every key (every differing bucket is held by both), B at newer versions.
    a.applyMutations(keys.map((key) => ({ kind: 'local', key, valueJson: '"old"' })));
    b.applyMutations(keys.map((key) => ({ kind: 'local', key, valueJson: '"new"' })));
    const bodies: number[] = [];
    const resync = new Resync(resyncDeps(a, clockA), transportTo(b, clockB, bodies), b.nodeId);
    const report = await resync.run();
    assert.equal(report.result, 'synced');
    assert.equal(report.entriesReceived, keys.length);
    assert.deepEqual(dumpContent(a), dumpContent(b));
    assert.ok(Math.max(...bodies) <= limits.syncBodyBytesMax, 'every request fit its route');
    a.close();
    b.close();
  });

  test('fetch batches cover every key in order, each within the body limit and key count', () => {
    const keys = [
      ...Array.from({ length: 2_500 }, (_, i) => `short-${i}`),
      ...Array.from({ length: 1_500 }, (_, i) => `${i}-${'\u0001'.repeat(1_000)}`),
    ];
    const bodyBytesMax = limits.syncBodyBytesMax;
    const seen: string[] = [];
    for (let start = 0; start < keys.length; ) {
      const batch = fetchBatch(keys, start, bodyBytesMax);
      assert.ok(batch.length >= 1 && batch.length <= replicationLimits.fetchKeysMax);
      assert.ok(Buffer.byteLength(JSON.stringify({ keys: batch })) <= bodyBytesMax);
      seen.push(...batch);
      start += batch.length;
    }
    assert.deepEqual(seen, keys);
    assert.equal(Buffer.byteLength(JSON.stringify({ keys: [] })), FETCH_BODY_FRAMING_BYTES);
  });
});

// A resync does not ask for the key summaries of buckets that replication brought level while
// it ran: a restarted node's peers push what it missed while it resyncs with another peer. The
// bench's 1M-key trial moved 2.1 MB of summaries for 100 missed writes that way (98 buckets of
// ~244 keys each, bench/ANALYSIS.md). Two real stores, the real peer handlers; "replication"
// here is the newer entries applied to the resyncing store while it reads its own summaries.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { HybridClock } from '../../src/clock.ts';
import { createInlineStorePool } from '../../src/inline-pool.ts';
import type { StorePool } from '../../src/pool.ts';
import { bucketOf } from '../../src/store/digest.ts';
import { KvStore } from '../../src/store/kv-store.ts';
import { Resync } from '../../src/sync/resync.ts';
import { resyncDeps, transportTo } from './resync-fixture.ts';
import { dumpContent, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

/** A pool whose first rows() task first runs `meanwhile` (what replication delivered by then). */
function poolWith(meanwhile: () => void): StorePool {
  const inner = createInlineStorePool();
  let ran = false;
  return {
    ...inner,
    rows: async (task) => {
      if (!ran) {
        ran = true;
        meanwhile();
      }
      return inner.rows(task);
    },
  };
}

/** B = A + `missed` newer writes (A missed them); the keys of both, 20 per bucket on average. */
function storesApart(missed: number) {
  const clock = new HybridClock(() => Date.now());
  const a = new KvStore(dirs.newDir(), 'normal', clock);
  const b = new KvStore(dirs.newDir(), 'normal', clock);
  const keys = Array.from({ length: 4_000 }, (_, i) => `key-${i}`);
  const base = keys.map((key) => ({ kind: 'local' as const, key, valueJson: '"v1"' }));
  const shared = b.applyMutations(base).map((result, i) => ({
    key: keys[i]!,
    version: result.version,
  }));
  a.applyMutations(
    shared.map(({ key }) => ({
      kind: 'remote' as const,
      entry: b.get(key)!,
      sourceNodeId: b.nodeId,
    })),
  );
  const changed = keys
    .filter((_, i) => i % Math.floor(keys.length / missed) === 0)
    .slice(0, missed);
  b.applyMutations(changed.map((key) => ({ kind: 'local', key, valueJson: '"v2"' })));
  const deliver = (which: readonly string[]) =>
    a.applyMutations(
      which.map((key) => ({ kind: 'remote', entry: b.get(key)!, sourceNodeId: b.nodeId })),
    );
  return { clock, a, b, changed, deliver };
}

describe('a resync racing replication', () => {
  test('asks for no summaries of buckets replication brought level meanwhile', async () => {
    const { clock, a, b, changed, deliver } = storesApart(40);
    const bodies: number[] = [];
    const paths: string[] = [];
    const resync = new Resync(
      resyncDeps(
        a,
        clock,
        poolWith(() => deliver(changed)),
      ),
      transportTo(b, clock, bodies, paths),
      b.nodeId,
    );
    const report = await resync.run();
    assert.equal(report.result, 'synced');
    assert.equal(report.bucketsLevelled, report.bucketsDiffering);
    assert.ok(report.bucketsDiffering >= 30, `${report.bucketsDiffering} buckets differed`);
    assert.ok(!paths.includes('/sync/rows'), `asked: ${paths.join(' ')}`);
    assert.equal(report.entriesReceived + report.entriesSent, 0);
    assert.deepEqual(dumpContent(a), dumpContent(b));
    a.close();
    b.close();
  });

  test('asks only for the buckets still differing, and brings them level', async () => {
    const { clock, a, b, changed, deliver } = storesApart(40);
    const delivered = changed.filter((_, i) => i % 2 === 0);
    const stillMissing = changed.filter((key) => !delivered.includes(key));
    const levelled = new Set(delivered.map(bucketOf));
    for (const key of stillMissing) levelled.delete(bucketOf(key));
    const resync = new Resync(
      resyncDeps(
        a,
        clock,
        poolWith(() => deliver(delivered)),
      ),
      transportTo(b, clock, []),
      b.nodeId,
    );
    const report = await resync.run();
    assert.equal(report.result, 'synced');
    assert.equal(report.bucketsLevelled, levelled.size);
    assert.equal(report.entriesReceived, stillMissing.length);
    assert.equal(report.entriesSent, 0, 'nothing of the levelled buckets was pushed back');
    assert.deepEqual(dumpContent(a), dumpContent(b));
    a.close();
    b.close();
  });
});

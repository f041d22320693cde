// Checks that a KvStore reopened on the same data dir keeps its data, node id, change sequence, digest and clock, and that the persisted bucket table equals a digest recomputed from the rows; by writing, closing and reopening in a temp dir and recomputing entryHash/bucketOf independently.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { LOGICAL_PER_MS } from '../../src/clock.ts';
import { BUCKETS, BucketDigest, bucketOf, entryHash } from '../../src/store/digest.ts';
import type { KvStore } from '../../src/store/kv-store.ts';
import { databasePath } from '../../src/store/open-database.ts';
import { compareVersions, formatVersion } from '../../src/version.ts';
import { applyRemote, dumpContent, openStore, putLocal, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const REMOTE_NODE = '00000000000000aa';

/** Fills a store with local puts, overwrites, deletes and remote entries (values and tombstones). */
function fill(store: KvStore, count: number): void {
  for (let index = 0; index < count; index += 1) putLocal(store, `key-${index}`, `{"n":${index}}`);
  for (let index = 0; index < count; index += 7) putLocal(store, `key-${index}`, `"rewritten"`);
  for (let index = 3; index < count; index += 5) putLocal(store, `key-${index}`, null);
  applyRemote(store, [
    { key: 'remote-live', valueJson: '[1,2,3]', version: { timestamp: 77, nodeId: REMOTE_NODE } },
    { key: 'remote-gone', valueJson: null, version: { timestamp: 78, nodeId: REMOTE_NODE } },
  ]);
}

/** A digest computed from the store's rows with our own calls to bucketOf and entryHash. */
function recomputeDigest(store: KvStore): BucketDigest {
  const digest = new BucketDigest();
  const live = store.list('', '', 1_000);
  assert.ok(live.length < 1_000, 'the listing is complete');
  const tombstones = store.changesSince(0, 100_000).filter((row) => row.valueJson === null);
  for (const entry of [...live, ...tombstones]) {
    digest.replace(
      bucketOf(entry.key),
      null,
      entryHash(entry.key, formatVersion(entry.version), entry.valueJson),
    );
  }
  return digest;
}

function readBucketTable(dataDir: string): { id: number; sum: number; count: number }[] {
  const db = new Database(databasePath(dataDir), { readonly: true });
  try {
    return db.prepare('SELECT id, sum, count FROM buckets ORDER BY id').all() as {
      id: number;
      sum: number;
      count: number;
    }[];
  } finally {
    db.close();
  }
}

describe('KvStore reopened on the same data dir', () => {
  test('keeps data, node id, change sequence, digest root and peer cursors', () => {
    const dir = dirs.newDir();
    const first = openStore(dir);
    fill(first, 60);
    first.setPeerCursor('http://127.0.0.1:8002', 'b0b0b0b0b0b0b0b0', 17);
    // A cursor past entries the peer refused keeps the refusal with it (seed 47652).
    first.setPeerCursor('http://127.0.0.1:8003', 'c0c0c0c0c0c0c0c0', 9, true, 123_456);
    const before = {
      nodeId: first.nodeId,
      seq: first.seq,
      root: first.digest.root(),
      content: dumpContent(first),
      live: first.list('', '', 1_000),
      entryCount: first.digest.entryCount(),
    };
    first.close();

    const second = openStore(dir);
    assert.equal(second.nodeId, before.nodeId);
    assert.equal(second.seq, before.seq);
    assert.equal(second.digest.root(), before.root);
    assert.equal(second.digest.entryCount(), before.entryCount);
    assert.deepEqual(dumpContent(second), before.content);
    assert.deepEqual(second.list('', '', 1_000), before.live);
    assert.deepEqual(second.peerCursor('http://127.0.0.1:8002'), {
      nodeId: 'b0b0b0b0b0b0b0b0',
      cursor: 17,
      level: true,
      refusedLowest: Infinity,
    });
    assert.equal(second.peerCursor('http://127.0.0.1:8003').refusedLowest, 123_456);
    assert.deepEqual(second.peerCursor('http://127.0.0.1:9999'), {
      nodeId: null,
      cursor: 0,
      level: false,
      refusedLowest: Infinity,
    });
    second.setPeerCursor('http://127.0.0.1:8003', 'c0c0c0c0c0c0c0c0', 9);
    assert.equal(second.peerCursor('http://127.0.0.1:8003').refusedLowest, Infinity, 'settled');
    putLocal(second, 'new', '1');
    assert.equal(second.seq, before.seq + 1, 'the sequence continues');
    second.close();
  });

  test('a local write after reopening orders after every earlier one, even if the wall clock went back', () => {
    const dir = dirs.newDir();
    const first = openStore(dir, () => 2_000_000);
    const earlier = [putLocal(first, 'a', '1'), putLocal(first, 'b', '1')];
    // A remote write from a clock far ahead: the clock observed it, and must remember that.
    const future = { timestamp: 9_000_000 * LOGICAL_PER_MS, nodeId: REMOTE_NODE };
    applyRemote(first, [{ key: 'c', valueJson: '1', version: future }]);
    first.close();

    // Reopened with a wall clock an hour behind: the persisted clock still wins.
    const second = openStore(dir, () => 2_000_000 - 3_600_000);
    const later = putLocal(second, 'd', '1');
    for (const version of [...earlier.map((result) => result.version), future]) {
      assert.ok(
        compareVersions(later.version, version) > 0,
        `${formatVersion(later.version)} should order after ${formatVersion(version)}`,
      );
    }
    second.close();
  });

  test('the persisted bucket table equals a digest recomputed from the rows', () => {
    const dir = dirs.newDir();
    const store = openStore(dir);
    fill(store, 300);
    const recomputed = recomputeDigest(store);
    assert.equal(store.digest.root(), recomputed.root(), 'in-memory digest');
    assert.equal(store.digest.entryCount(), recomputed.entryCount());
    store.close();

    const table = readBucketTable(dir);
    assert.equal(table.length, BUCKETS);
    for (const row of table) {
      assert.equal(row.sum, recomputed.sums[row.id], `bucket ${row.id} sum`);
      assert.equal(row.count, recomputed.counts[row.id], `bucket ${row.id} count`);
    }
    const reopened = openStore(dir);
    assert.equal(reopened.digest.root(), recomputed.root(), 'digest loaded from the table');
    reopened.close();
  });
});

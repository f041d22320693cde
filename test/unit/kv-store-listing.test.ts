// Checks that listings never walk tombstones or keys past the prefix (issue 9, point 12): the listing query reads the live-key index bounded by the prefix's successor (its query plan, on a store full of tombstones), the successor is right for awkward prefixes (a seeded property test against a brute-force filter), and a lone node stores no tombstone for a key it never held.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { LIST_SQL, prefixSuccessor } from '../../src/store/kv-store.ts';
import { applyRemote, openStore, putLocal, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
const NODE = '00000000000000aa';

describe('GET /kv listing over tombstones', () => {
  test('the listing reads only live keys between the prefix and its successor', () => {
    const store = openStore(dirs.newDir());
    const tombstones = Array.from({ length: 2_000 }, (_, index) => ({
      key: `b/${String(index).padStart(5, '0')}`,
      valueJson: null,
      version: { timestamp: index + 1, nodeId: NODE },
    }));
    applyRemote(store, tombstones);
    putLocal(store, 'a/1', '1');
    putLocal(store, 'c/1', '3');
    assert.deepEqual(
      store.list('a', '', 100).map((entry) => entry.key),
      ['a/1'],
    );
    assert.deepEqual(store.list('b', '', 100), []);
    const db = new Database(store.dbPath, { readonly: true });
    try {
      const plan = (sql: string, args: unknown[]) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as { detail: string }[])
          .map((row) => row.detail)
          .join('; ');
      // Parameters: prefix, after, [upper bound,] the expiry cut-off (now), limit.
      const bounded = plan(LIST_SQL.replace('%UPPER%', 'AND key < ?'), ['a', '', 'b', 0, 100]);
      assert.match(bounded, /USING INDEX kv_live \(key>\? AND key<\?\)/, bounded);
      const open = plan(LIST_SQL.replace('%UPPER%', ''), ['', '', 0, 100]);
      assert.match(open, /USING INDEX kv_live/, open);
    } finally {
      db.close();
      store.close();
    }
  });

  test('prefixSuccessor bounds exactly the keys that start with the prefix', () => {
    assert.equal(prefixSuccessor(''), undefined);
    assert.equal(prefixSuccessor('a'), 'b');
    assert.equal(prefixSuccessor('a\u{10ffff}'), 'b');
    assert.equal(prefixSuccessor('\u{10ffff}'), undefined);
    assert.equal(prefixSuccessor('x\ud7ff'), 'x\ue000');
    assert.equal(prefixSuccessor('x\uffff'), 'x\u{10000}');
  });

  test('listings match a brute-force filter for prefixes at awkward code points (seeded)', () => {
    const store = openStore(dirs.newDir());
    const chars = [
      'a',
      'b',
      '\u007f',
      '\u0080',
      '\ud7ff',
      '\ue000',
      '\uffff',
      '\u{10000}',
      '\u{10ffff}',
    ];
    const keyArb = fc
      .array(fc.constantFrom(...chars), { minLength: 1, maxLength: 4 })
      .map((parts) => parts.join(''));
    const keys = fc.sample(fc.uniqueArray(keyArb, { minLength: 200, maxLength: 200 }), {
      numRuns: 1,
      seed: 9,
    })[0]!;
    for (const [index, key] of keys.entries()) putLocal(store, key, index % 3 === 0 ? null : '1');
    const live = keys.filter((_, index) => index % 3 !== 0).sort(byteOrder);
    try {
      fc.assert(
        fc.property(keyArb, fc.option(keyArb, { nil: '' }), (prefix, afterKey) => {
          const expected = live
            .filter((key) => key.startsWith(prefix) && byteOrder(key, afterKey) > 0)
            .slice(0, 50);
          const listed = store.list(prefix, afterKey, 50).map((entry) => entry.key);
          assert.deepEqual(listed, expected, `prefix ${JSON.stringify(prefix)}`);
        }),
        { numRuns: 300, seed: 12 },
      );
    } finally {
      store.close();
    }
  });
});

describe('DELETE of a key the node never held', () => {
  test('without peers it stores nothing; in a cluster (the default) it stores a tombstone', () => {
    const store = openStore(dirs.newDir());
    const root = store.digest.root();
    const [lone] = store.applyMutations([
      { kind: 'local', key: 'never', valueJson: null, tombstoneIfAbsent: false },
    ]);
    assert.equal(lone?.applied, false);
    assert.equal(lone?.existed, false);
    assert.equal(lone?.version.nodeId, store.nodeId);
    assert.equal(store.seq, 0, 'no change recorded');
    assert.equal(store.get('never'), undefined, 'no tombstone');
    assert.equal(store.digest.root(), root);
    // A delete of a key that exists is stored either way.
    putLocal(store, 'held', '1');
    const [held] = store.applyMutations([
      { kind: 'local', key: 'held', valueJson: null, tombstoneIfAbsent: false },
    ]);
    assert.equal(held?.applied, true);
    assert.equal(store.get('held')?.valueJson, null);
    const clustered = putLocal(store, 'elsewhere', null);
    assert.equal(clustered.applied, true, 'a peer may still send a write the tombstone must beat');
    assert.equal(store.get('elsewhere')?.valueJson, null);
    store.close();
  });
});

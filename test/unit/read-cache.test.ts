// Checks the store's cache of point reads: its bounds (least recently read goes first, by
// entries and by value characters; a large value is never held), and that it is exact — after
// every kind of change to a row (local write and delete, a merge won and lost, the expiry sweep,
// removal past the horizon, a transaction rolled back after a read inside it), `get` answers what
// a second SQLite connection reads from the file.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { LOGICAL_PER_MS } from '../../src/clock.ts';
import type { KvStore } from '../../src/store/kv-store.ts';
import { ReadCache } from '../../src/store/read-cache.ts';
import type { Entry, Mutation } from '../../src/store/types.ts';
import { formatVersion } from '../../src/version.ts';
import { createRng } from '../helpers/fault-proxy.ts';
import { applyRemote, openStore, putLocal, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const B = '000000000000000b';
const entry = (key: string, valueJson: string | null): Entry => ({
  key,
  valueJson,
  version: { timestamp: 1, nodeId: B },
});

describe('read cache bounds', () => {
  test('drops the least recently read entry first', () => {
    const cache = new ReadCache({ entriesMax: 3, valueCharsMax: 1_000, entryValueCharsMax: 100 });
    for (const key of ['a', 'b', 'c']) cache.remember(entry(key, '1'));
    assert.ok(cache.lookup('a'), 'a is read: b is now the oldest');
    cache.remember(entry('d', '1'));
    assert.equal(cache.size, 3);
    assert.equal(cache.lookup('b'), undefined);
    for (const key of ['a', 'c', 'd']) assert.ok(cache.lookup(key), key);
    assert.deepEqual(cache.stats, { hits: 4, misses: 1 });
  });

  test('holds at most valueCharsMax of values, and never one above entryValueCharsMax', () => {
    const cache = new ReadCache({ entriesMax: 100, valueCharsMax: 25, entryValueCharsMax: 10 });
    cache.remember(entry('big', 'x'.repeat(11)));
    assert.equal(cache.size, 0, 'a value over the per-entry bound is not held');
    for (const key of ['a', 'b', 'c']) cache.remember(entry(key, 'x'.repeat(10)));
    assert.equal(cache.size, 2, 'the third value would pass 25 characters: the oldest went');
    assert.equal(cache.valueChars, 20);
    assert.equal(cache.lookup('a'), undefined);
    cache.remember(entry('b', null));
    assert.equal(cache.valueChars, 10, 'remembering a key again replaces its characters');
    cache.forget('c');
    cache.forget('c');
    assert.equal(cache.valueChars, 0);
    cache.clear();
    assert.equal(cache.size, 0);
  });

  test('entriesMax 0 holds nothing', () => {
    const cache = new ReadCache({ entriesMax: 0, valueCharsMax: 100, entryValueCharsMax: 100 });
    cache.remember(entry('a', '1'));
    assert.equal(cache.size, 0);
  });
});

/** What a second connection reads from the file: the committed row, as `get` shows it. */
function fileView(db: Database.Database, key: string): string {
  const row = db.prepare('SELECT value, ts, node, expires FROM kv WHERE key = ?').get(key) as
    | { value: string | null; ts: number; node: string; expires: number | null }
    | undefined;
  if (!row) return 'absent';
  return `${formatVersion({ timestamp: row.ts, nodeId: row.node })} ${row.value} ${row.expires}`;
}

function storeView(store: KvStore, key: string): string {
  const found = store.get(key);
  if (!found) return 'absent';
  return `${formatVersion(found.version)} ${found.valueJson} ${found.expiresAt ?? null}`;
}

describe('the store with its cache', () => {
  test('answers what the file holds after every kind of change', () => {
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = createRng(seed);
      let wall = 1_000_000;
      const store = openStore(dirs.newDir(), () => wall);
      const file = new Database(store.dbPath, { readonly: true });
      const pick = () => keys[Math.floor(random() * keys.length)]!;
      const kinds: Record<string, () => void> = {
        put: () => putLocal(store, pick(), String(Math.floor(random() * 100))),
        delete: () => putLocal(store, pick(), null),
        ttl: () => {
          store.applyMutations([
            { kind: 'local', key: pick(), valueJson: '"t"', expiresAt: wall + 50 },
          ]);
        },
        remoteNewer: () => {
          const version = { timestamp: (wall + 5_000) * LOGICAL_PER_MS, nodeId: B };
          applyRemote(store, [{ key: pick(), valueJson: random() < 0.3 ? null : '"r"', version }]);
        },
        remoteOlder: () => {
          const version = { timestamp: 1, nodeId: B };
          applyRemote(store, [{ key: pick(), valueJson: '"old"', version }]);
        },
        sweep: () => {
          wall += 100;
          const expired = store.expiredKeys(wall, 100);
          store.applyMutations(expired.map((e) => ({ kind: 'expire', ...e }) as Mutation));
        },
        removal: () => {
          wall += 10_000;
          store.raiseHorizon((wall - 1) * LOGICAL_PER_MS);
          store.removeBelowHorizon(1_000);
        },
        rollback: () => {
          // A write, a conditional write refused after reading the same key inside the transaction
          // (so it caches what the first wrote), then an entry that cannot be stored: the whole
          // transaction rolls back.
          const key = pick();
          const bad = { timestamp: (wall + 9_000) * LOGICAL_PER_MS, nodeId: null };
          assert.throws(() =>
            store.applyMutations([
              { kind: 'local', key, valueJson: '"never committed"' },
              { kind: 'local', key, valueJson: '"nor this"', condition: { kind: 'absent' } },
              {
                kind: 'remote',
                entry: { key: 'zz', valueJson: '1', version: bad } as unknown as Entry,
                sourceNodeId: B,
              },
            ]),
          );
        },
      };
      const names = Object.keys(kinds);
      for (let step = 0; step < 300; step += 1) {
        const name = names[Math.floor(random() * names.length)]!;
        kinds[name]!();
        for (const key of keys) {
          assert.equal(
            storeView(store, key),
            fileView(file, key),
            `seed ${seed}, step ${step} (${name}), key ${key}`,
          );
        }
      }
      assert.ok(store.readCacheStats.hits > 500, 'most reads were answered from the cache');
      file.close();
      store.close();
    }
  });
});

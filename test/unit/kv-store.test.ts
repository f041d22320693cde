// Checks KvStore's reads and local writes on a real SQLite file in a temp dir: put/get/delete, tombstones hidden from listings, prefix/after/limit listing in UTF-8 byte order, the change sequence, and that a failed transaction leaves no trace.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { TIMESTAMP_MAX, timestampMaxAt } from '../../src/clock.ts';
import { PeerkvError } from '../../src/errors.ts';
import { validateReplicate } from '../../src/http/validate.ts';
import { compareVersions, formatVersion, parseVersion } from '../../src/version.ts';
import { applyRemote, dumpContent, openStore, putLocal, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('KvStore put, get and delete', () => {
  test('a put is read back with a version of this node', () => {
    const store = openStore(dirs.newDir());
    assert.equal(store.get('hello'), undefined);
    const result = putLocal(store, 'hello', '"world"');
    assert.equal(result.applied, true);
    assert.equal(result.existed, false);
    assert.equal(result.version.nodeId, store.nodeId);
    assert.deepEqual(store.get('hello'), {
      key: 'hello',
      valueJson: '"world"',
      version: result.version,
    });
    store.close();
  });

  test('an overwrite gets a higher version and reports that the key existed', () => {
    const store = openStore(dirs.newDir());
    const first = putLocal(store, 'k', '1');
    const second = putLocal(store, 'k', '2');
    assert.equal(second.existed, true);
    assert.ok(compareVersions(second.version, first.version) > 0);
    assert.equal(store.get('k')?.valueJson, '2');
    store.close();
  });

  test('a delete leaves a newer tombstone that hides the key from get-as-live and list', () => {
    const store = openStore(dirs.newDir());
    const put = putLocal(store, 'k', '"v"');
    putLocal(store, 'other', '1');
    const deleted = putLocal(store, 'k', null);
    assert.equal(deleted.applied, true);
    assert.equal(deleted.existed, true);
    assert.ok(compareVersions(deleted.version, put.version) > 0);
    const tombstone = store.get('k');
    assert.ok(tombstone, 'the tombstone row stays, with its version');
    assert.equal(tombstone.valueJson, null, 'not live');
    assert.deepEqual(tombstone.version, deleted.version);
    assert.deepEqual(
      store.list('', '', 100).map((entry) => entry.key),
      ['other'],
    );
    assert.deepEqual(store.list('k', '', 100), []);
    assert.equal(putLocal(store, 'k', null).existed, false, 'deleting a tombstone: did not exist');
    const revived = putLocal(store, 'k', '"again"');
    assert.equal(revived.existed, false);
    assert.equal(store.get('k')?.valueJson, '"again"');
    store.close();
  });

  test('keys with NUL, slashes and non-BMP characters round-trip', () => {
    const store = openStore(dirs.newDir());
    const keys = ['a\u0000b', 'a', '/x/y', '😀', '\uFFFF', 'é'.repeat(512)];
    for (const [index, key] of keys.entries()) putLocal(store, key, String(index));
    for (const [index, key] of keys.entries()) {
      assert.equal(store.get(key)?.valueJson, String(index), `key ${JSON.stringify(key)}`);
    }
    assert.equal(store.get('a\u0000'), undefined, 'NUL is part of the key, not a terminator');
    store.close();
  });
});

describe('KvStore list', () => {
  // Keys whose UTF-16 order and UTF-8 byte order disagree ('\uFFFF' vs '😀'), plus prefixes of each other.
  const keys = [
    'b',
    'a',
    'ab',
    'abc',
    'a/1',
    'a/2',
    'a\u0000',
    'é',
    'z',
    '\uFFFF',
    '😀',
    '😀x',
    'ac',
  ];
  const store = openStore(dirs.newDir());
  for (const key of keys) putLocal(store, key, JSON.stringify(key));
  putLocal(store, 'ab', null);
  const live = keys.filter((key) => key !== 'ab').sort(byteOrder);
  after(() => store.close());

  test('lists every live key in UTF-8 byte order, not UTF-16 order', () => {
    const listed = store.list('', '', 1_000).map((entry) => entry.key);
    assert.deepEqual(listed, live);
    assert.ok(listed.indexOf('\uFFFF') < listed.indexOf('😀'), 'U+FFFF sorts before U+1F600');
    assert.deepEqual(
      store.list('', '', 1_000).map((entry) => entry.valueJson),
      live.map((key) => JSON.stringify(key)),
    );
  });

  test('a prefix selects exactly the live keys starting with it', () => {
    for (const prefix of ['a', 'a/', 'ab', '😀', '\uFFFF', 'q', 'é']) {
      const listed = store.list(prefix, '', 1_000).map((entry) => entry.key);
      assert.deepEqual(
        listed,
        live.filter((key) => key.startsWith(prefix)),
        `prefix ${JSON.stringify(prefix)}`,
      );
    }
  });

  test('after is exclusive and limit caps the page', () => {
    assert.deepEqual(
      store.list('', 'a', 3).map((entry) => entry.key),
      live.filter((key) => byteOrder(key, 'a') > 0).slice(0, 3),
    );
    assert.deepEqual(store.list('', live.at(-1)!, 10), []);
    assert.equal(store.list('', '', 1).length, 1);
  });

  test('paging with after and limit visits every key once, in order', () => {
    for (const [prefix, pageSize] of [
      ['', 1],
      ['', 2],
      ['', 5],
      ['a', 2],
      ['😀', 1],
    ] as [string, number][]) {
      const visited: string[] = [];
      let cursor = '';
      for (let page = 0; page < 50; page += 1) {
        const entries = store.list(prefix, cursor, pageSize);
        visited.push(...entries.map((entry) => entry.key));
        if (entries.length < pageSize) break;
        cursor = entries.at(-1)!.key;
      }
      assert.deepEqual(
        visited,
        live.filter((key) => key.startsWith(prefix)),
        `prefix ${prefix}`,
      );
    }
  });

  test('an after that sorts before the prefix starts at the prefix', () => {
    assert.deepEqual(
      store.list('é', 'a', 10).map((entry) => entry.key),
      ['é'],
    );
  });
});

describe('KvStore change sequence', () => {
  test('every applied change takes the next sequence number', () => {
    const store = openStore(dirs.newDir());
    assert.equal(store.seq, 0);
    putLocal(store, 'a', '1');
    putLocal(store, 'b', '1');
    assert.equal(store.seq, 2);
    const results = store.applyMutations([
      { kind: 'local', key: 'a', valueJson: '2' },
      { kind: 'local', key: 'c', valueJson: null },
    ]);
    assert.equal(results.length, 2);
    assert.equal(store.seq, 4);
    store.close();
  });

  test('changesSince returns the latest change of each key, in sequence order', () => {
    const store = openStore(dirs.newDir());
    putLocal(store, 'a', '1'); // 1
    putLocal(store, 'b', '1'); // 2
    putLocal(store, 'a', '2'); // 3
    putLocal(store, 'c', '1'); // 4
    putLocal(store, 'b', null); // 5
    const changes = store.changesSince(0, 100);
    assert.deepEqual(
      changes.map((change) => [change.seq, change.key, change.valueJson]),
      [
        [3, 'a', '2'],
        [4, 'c', '1'],
        [5, 'b', null],
      ],
    );
    for (const change of changes) {
      assert.equal(change.sourceNodeId, store.nodeId);
      assert.deepEqual(change.version, store.get(change.key)?.version);
    }
    assert.deepEqual(
      store.changesSince(3, 100).map((change) => change.seq),
      [4, 5],
    );
    assert.deepEqual(
      store.changesSince(0, 2).map((change) => change.seq),
      [3, 4],
    );
    assert.deepEqual(store.changesSince(5, 100), []);
    assert.equal(store.oldestChangeAfter(3), store.get('c')?.version.timestamp);
    assert.equal(store.oldestChangeAfter(5), undefined);
    store.close();
  });

  test('a remote change records its source; a losing remote change takes no sequence number', () => {
    const store = openStore(dirs.newDir());
    const entry = {
      key: 'r',
      valueJson: '"remote"',
      version: { timestamp: 5_000, nodeId: '00000000000000aa' },
    };
    const [won] = applyRemote(store, [entry], '00000000000000bb');
    assert.equal(won?.applied, true);
    assert.equal(store.seq, 1);
    const [change] = store.changesSince(0, 10);
    assert.equal(change?.sourceNodeId, '00000000000000bb');
    const [lost] = applyRemote(store, [
      { ...entry, version: { ...entry.version, timestamp: 4_999 } },
    ]);
    assert.equal(lost?.applied, false);
    assert.equal(store.seq, 1);
    store.close();
  });

  test('a local write orders after a remote entry for the same key, even from the future', () => {
    const store = openStore(dirs.newDir(), () => 1_000);
    const future = { timestamp: 9_000_000_000, nodeId: 'ffffffffffffffff' };
    applyRemote(store, [{ key: 'k', valueJson: '"remote"', version: future }]);
    const local = putLocal(store, 'k', '"local"');
    assert.ok(compareVersions(local.version, future) > 0);
    assert.equal(store.get('k')?.valueJson, '"local"');
    store.close();
  });
});

describe('KvStore and remote versions at the top of the range', () => {
  test('a version beyond TIMESTAMP_MAX is refused whole with BAD_BATCH', () => {
    assert.throws(
      () =>
        validateReplicate(
          { entries: [{ key: 'top', value: 1, version: '1fffffffffffff-00000000000000aa' }] },
          1_000,
        ),
      (error: unknown) => error instanceof PeerkvError && error.code === 'BAD_BATCH',
    );
  });

  test('a version more than a day ahead of the wall clock is refused', () => {
    const now = Date.now();
    const ahead = formatVersion({
      timestamp: (now + 2 * 86_400_000) * 1024,
      nodeId: '00000000000000aa',
    });
    assert.throws(
      () =>
        validateReplicate(
          { entries: [{ key: 'k', value: 1, version: ahead }] },
          1_000,
          timestampMaxAt(now),
        ),
      (error: unknown) => error instanceof PeerkvError && error.code === 'BAD_BATCH',
    );
  });

  test('the largest accepted version still leaves local writes distinct and parseable', () => {
    const store = openStore(dirs.newDir());
    const top = formatVersion({ timestamp: TIMESTAMP_MAX, nodeId: '00000000000000aa' });
    const payload = validateReplicate({ entries: [{ key: 'top', value: 1, version: top }] }, 1_000);
    assert.ok(payload.kind === 'batch');
    applyRemote(store, payload.entries);
    const first = putLocal(store, 'mine', '"first"').version;
    const second = putLocal(store, 'mine', '"second"').version;
    store.close();
    assert.ok(compareVersions(second, first) > 0, 'two writes of one key share a version');
    for (const version of [first, second]) {
      assert.ok(
        parseVersion(formatVersion(version)),
        `${formatVersion(version)} is refused by peers`,
      );
    }
  });
});

describe('KvStore failed transaction', () => {
  test('a mutation that fails rolls back the whole group: content, sequence and digest', () => {
    const store = openStore(dirs.newDir());
    putLocal(store, 'kept', '1');
    const seq = store.seq;
    const root = store.digest.root();
    const content = dumpContent(store);
    // A value SQLite cannot bind makes the second mutation throw inside the transaction.
    const unbindable = Symbol('not a string') as unknown as string;
    assert.throws(() =>
      store.applyMutations([
        { kind: 'local', key: 'first', valueJson: '"ok"' },
        { kind: 'local', key: 'kept', valueJson: '2' },
        { kind: 'local', key: 'second', valueJson: unbindable },
      ]),
    );
    assert.equal(store.get('first'), undefined);
    assert.equal(store.get('kept')?.valueJson, '1');
    assert.equal(store.seq, seq);
    assert.equal(store.digest.root(), root);
    assert.deepEqual(dumpContent(store), content);
    putLocal(store, 'after', '1');
    assert.equal(store.seq, seq + 1, 'the sequence continues without a gap');
    store.close();
  });
});

// Checks conditional writes and atomic groups in KvStore and WriteQueue on real SQLite files: If-Match,
// exists and absent conditions, a failed condition refusing a whole group with nothing written (seq,
// digest and rows unchanged), atomic jobs never split across transactions, and the sender never
// cutting an atomic batch across two replication requests.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Mutation } from '../../src/store/types.ts';
import { WriteQueue } from '../../src/store/write-queue.ts';
import { dumpContent, openStore, putLocal, senderToFake, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const put = (key: string, valueJson: string, extra: Partial<Mutation> = {}): Mutation =>
  ({ kind: 'local', key, valueJson, ...extra }) as Mutation;

describe('conditions on local writes', () => {
  test('If-Match writes only over the current version; a refusal reports it and writes nothing', () => {
    const store = openStore(dirs.newDir());
    const first = putLocal(store, 'k', '1');
    const seq = store.seq;
    const [stale] = store.applyMutations([
      put('k', '2', { condition: { kind: 'match', version: { ...first.version, timestamp: 1 } } }),
    ]);
    assert.equal(stale!.refused, 'condition');
    assert.deepEqual(stale!.version, first.version);
    assert.equal(stale!.existed, true);
    assert.equal(store.seq, seq, 'a refused write takes no seq');
    const [fresh] = store.applyMutations([
      put('k', '3', { condition: { kind: 'match', version: first.version } }),
    ]);
    assert.equal(fresh!.applied, true);
    assert.equal(store.get('k')?.valueJson, '3');
    store.close();
  });

  test('absent holds for a missing, deleted or expired key; exists only for a live one', () => {
    let now = 1_000_000;
    const store = openStore(dirs.newDir(), () => now);
    const absent = { condition: { kind: 'absent' } } as const;
    assert.equal(store.applyMutations([put('new', '1', absent)])[0]!.applied, true);
    assert.equal(store.applyMutations([put('new', '2', absent)])[0]!.refused, 'condition');
    putLocal(store, 'new', null);
    assert.equal(store.applyMutations([put('new', '3', absent)])[0]!.applied, true);
    store.applyMutations([put('ttl', '1', { expiresAt: now + 1_000 })]);
    const exists = { condition: { kind: 'exists' } } as const;
    assert.equal(store.applyMutations([put('ttl', '2', exists)])[0]!.applied, true);
    store.applyMutations([put('ttl', '1', { expiresAt: now + 1_000 })]);
    now += 1_001;
    assert.equal(store.applyMutations([put('ttl', '2', exists)])[0]!.refused, 'condition');
    assert.equal(store.applyMutations([put('ttl', '2', absent)])[0]!.applied, true);
    store.close();
  });

  test('one failed condition refuses its whole group and leaves rows, seq and digest as they were', () => {
    const store = openStore(dirs.newDir());
    putLocal(store, 'taken', '0');
    const before = { content: dumpContent(store), seq: store.seq, root: store.digest.root() };
    const results = store.applyMutations(
      [
        put('a', '1'),
        put('taken', '1', { condition: { kind: 'absent' } }),
        { kind: 'local', key: 'b', valueJson: null },
      ],
      [{ start: 0, count: 3 }],
    );
    assert.deepEqual(
      results.map((result) => result.refused),
      ['aborted', 'condition', 'aborted'],
    );
    assert.deepEqual(dumpContent(store), before.content);
    assert.equal(store.seq, before.seq);
    assert.equal(store.digest.root(), before.root);
    store.close();
  });

  test('a successful group takes consecutive seqs and its changes name the last one', () => {
    const store = openStore(dirs.newDir());
    putLocal(store, 'x', '0');
    const mutations = ['a', 'b', 'c'].map((key) => put(key, '1'));
    store.applyMutations(mutations, [{ start: 0, count: 3 }]);
    const changes = store.changesSince(1, 10);
    assert.deepEqual(
      changes.map((change) => [change.seq, change.batchEndSeq]),
      [
        [2, 4],
        [3, 4],
        [4, 4],
      ],
    );
    putLocal(store, 'b', '2');
    assert.equal(store.changesSince(4, 1)[0]?.batchEndSeq, null, 'a later write leaves the batch');
    store.close();
  });
});

describe('atomic jobs in the write queue', () => {
  test('an atomic job is never split, even when it does not fit the room left', async () => {
    const store = openStore(dirs.newDir());
    const transactions: number[] = [];
    const queue = new WriteQueue(
      {
        applyMutations: (mutations, groups) => {
          transactions.push(mutations.length);
          return store.applyMutations(mutations, groups);
        },
      },
      { commitMutationsMax: 10, queuedMutationsMax: 1_000 },
    );
    const singles = queue.submit(Array.from({ length: 7 }, (_, i) => put(`s${i}`, '1')));
    const batch = queue.submit(
      Array.from({ length: 25 }, (_, i) => put(`b${i}`, '1')),
      { atomic: true },
    );
    const tail = queue.submit([put('t', '1')]);
    await Promise.all([singles, batch, tail]);
    assert.deepEqual(transactions, [7, 25, 1]);
    store.close();
  });
});

describe('the sender and atomic batches', () => {
  test('a replication request never ends inside an atomic batch', async () => {
    const store = openStore(dirs.newDir());
    for (let i = 0; i < 600; i += 1) putLocal(store, `single-${i}`, '1');
    const batch = Array.from({ length: 1_000 }, (_, i) => put(`batch-${i}`, '2'));
    store.applyMutations(batch, [{ start: 0, count: batch.length }]);
    const bodies: { keys: string[] }[] = [];
    // The cursor is read when the sender is made: set it first.
    store.setPeerCursor('http://127.0.0.1:1', '00000000000000aa', 0);
    const sender = senderToFake(store, async (_method, _path, body) => {
      const parsed = JSON.parse(body!) as { entries: { key: string }[] };
      bodies.push({ keys: parsed.entries.map((entry) => entry.key) });
      return { json: {}, bytes: 0, headers: {} };
    });
    sender.activate('00000000000000aa');
    const deadline = Date.now() + 5_000;
    while (sender.pending > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    sender.stop();
    assert.equal(sender.pending, 0, 'everything was sent');
    const holders = bodies.filter((body) => body.keys.some((key) => key.startsWith('batch-')));
    assert.equal(holders.length, 1, 'the batch travels in one request');
    assert.equal(holders[0]!.keys.filter((key) => key.startsWith('batch-')).length, 1_000);
    store.close();
  });
});

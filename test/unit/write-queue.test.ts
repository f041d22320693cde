// Checks WriteQueue's group commit, large jobs committed whole (never split), back-pressure, failure isolation and shutdown, by driving it with a fake applier that records every transaction and can be told to throw.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Mutation, MutationResult } from '../../src/store/types.ts';
import { type MutationApplier, WriteQueue } from '../../src/store/write-queue.ts';
import { rejectsPeerkv } from './assert-peerkv-error.ts';

/** Records each transaction; each result names its mutation's key in `version.nodeId`. */
class FakeApplier implements MutationApplier {
  readonly transactions: string[][] = [];
  /** Keys that make the transaction holding them throw. */
  readonly poison = new Set<string>();

  applyMutations(mutations: readonly Mutation[]): MutationResult[] {
    const keys = mutations.map(keyOf);
    const bad = keys.find((key) => this.poison.has(key));
    if (bad !== undefined) throw new Error(`disk full while writing ${bad}`);
    this.transactions.push(keys);
    const transaction = this.transactions.length;
    return keys.map((key) => ({
      applied: true,
      version: { timestamp: transaction, nodeId: key },
      existed: false,
    }));
  }
}

function keyOf(mutation: Mutation): string {
  return mutation.kind === 'remote' ? mutation.entry.key : mutation.key;
}

function puts(...keys: string[]): Mutation[] {
  return keys.map((key) => ({ kind: 'local', key, valueJson: '1' }));
}

function range(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}${index}`);
}

const resultKeys = (results: MutationResult[]): string[] =>
  results.map((result) => result.version.nodeId);

function newQueue(applier: FakeApplier, commitMutationsMax = 100, queuedMutationsMax = 1_000) {
  return new WriteQueue(applier, { commitMutationsMax, queuedMutationsMax });
}

describe('WriteQueue group commit', () => {
  test('submissions in the same tick share one transaction and resolve in order with their own results', async () => {
    const applier = new FakeApplier();
    const queue = newQueue(applier);
    const settled: number[] = [];
    const jobs = Array.from({ length: 10 }, (_, index) => {
      const keys = range(`job${index}-`, (index % 3) + 1);
      const promise = queue.submit(puts(...keys)).then((results) => {
        settled.push(index);
        return results;
      });
      return { keys, promise };
    });
    assert.equal(applier.transactions.length, 0, 'nothing is committed synchronously');
    assert.equal(queue.queued, 19, '1+2+3+1+2+3+1+2+3+1 mutations waiting');
    for (const { keys, promise } of jobs) assert.deepEqual(resultKeys(await promise), keys);
    assert.equal(applier.transactions.length, 1);
    assert.deepEqual(
      applier.transactions[0],
      jobs.flatMap(({ keys }) => keys),
    );
    assert.deepEqual(settled, [...Array(10).keys()]);
    assert.equal(queue.commits, 1);
    assert.equal(queue.queued, 0);
  });

  test('submissions in later ticks get later transactions', async () => {
    const applier = new FakeApplier();
    const queue = newQueue(applier);
    await queue.submit(puts('a'));
    await queue.submit(puts('b'));
    assert.deepEqual(applier.transactions, [['a'], ['b']]);
  });

  test('an empty submission resolves at once without a transaction', async () => {
    const applier = new FakeApplier();
    assert.deepEqual(await newQueue(applier).submit([]), []);
    assert.equal(applier.transactions.length, 0);
  });

  test('onCommit sees every committed transaction', async () => {
    const applier = new FakeApplier();
    const seen: string[][] = [];
    const queue = new WriteQueue(applier, {
      commitMutationsMax: 2,
      queuedMutationsMax: 100,
      onCommit: (results) => seen.push(resultKeys([...results])),
    });
    await Promise.all([queue.submit(puts('a', 'b')), queue.submit(puts('c'))]);
    assert.deepEqual(seen, [['a', 'b'], ['c']]);
  });
});

describe('WriteQueue large jobs', () => {
  test('a job bigger than commitMutationsMax commits in one transaction of its own (all or nothing)', async () => {
    const applier = new FakeApplier();
    const queue = newQueue(applier, 3);
    const before = queue.submit(puts('x'));
    const keys = range('k', 10);
    const results = await queue.submit(puts(...keys));
    await before;
    assert.deepEqual(applier.transactions, [['x'], keys]);
    assert.deepEqual(resultKeys(results), keys, 'all results, in order');
    assert.ok(
      results.every((result) => result.version.timestamp === 2),
      'one transaction',
    );
  });

  test('the event loop runs between transactions: jobs are grouped up to commitMutationsMax', async () => {
    const applier = new FakeApplier();
    const queue = newQueue(applier, 2);
    const done = Promise.all([1, 2, 3].map((n) => queue.submit(puts(`a${n}`, `b${n}`))));
    const progress: number[] = [];
    for (let turn = 0; turn < 3; turn += 1) {
      await nextTurn();
      progress.push(applier.transactions.length);
    }
    await done;
    assert.deepEqual(progress, [1, 2, 3], 'one transaction per turn');
  });

  test('a small job behind a large job gets the next transaction and resolves after it', async () => {
    const applier = new FakeApplier();
    const queue = newQueue(applier, 3);
    const order: string[] = [];
    const big = queue.submit(puts('a1', 'a2', 'b1', 'b2', 'b3')).then(() => order.push('big'));
    const small = queue.submit(puts('c1')).then(() => order.push('small'));
    await Promise.all([big, small]);
    assert.deepEqual(applier.transactions, [['a1', 'a2', 'b1', 'b2', 'b3'], ['c1']]);
    assert.deepEqual(order, ['big', 'small']);
  });
});

describe('WriteQueue back-pressure', () => {
  test('a full queue rejects with OVERLOADED, status 503 and Retry-After; room comes back after a commit', async () => {
    const applier = new FakeApplier();
    const queue = newQueue(applier, 100, 5);
    const first = queue.submit(puts('a', 'b', 'c'));
    const error = await rejectsPeerkv(queue.submit(puts('d', 'e', 'f')), 'OVERLOADED');
    assert.equal(error.status, 503);
    assert.equal(error.headers['Retry-After'], '1');
    const fits = queue.submit(puts('d', 'e'));
    assert.equal(queue.queued, 5, 'exactly full');
    await rejectsPeerkv(queue.submit(puts('z')), 'OVERLOADED');
    assert.deepEqual(resultKeys(await first), ['a', 'b', 'c']);
    assert.deepEqual(resultKeys(await fits), ['d', 'e']);
    assert.deepEqual(
      applier.transactions,
      [['a', 'b', 'c', 'd', 'e']],
      'the refused jobs never ran',
    );
    assert.deepEqual(resultKeys(await queue.submit(puts('g', 'h', 'i', 'j', 'k'))), [
      'g',
      'h',
      'i',
      'j',
      'k',
    ]);
  });

  test('a single job larger than the queue is refused', async () => {
    const queue = newQueue(new FakeApplier(), 100, 5);
    await rejectsPeerkv(queue.submit(puts(...range('k', 6))), 'OVERLOADED');
    assert.equal(queue.queued, 0);
  });
});

describe('WriteQueue failures', () => {
  test('an applier that throws rejects exactly the jobs of that transaction; later jobs still succeed', async () => {
    const applier = new FakeApplier();
    applier.poison.add('bad');
    const queue = newQueue(applier, 2);
    const outcomes = await Promise.allSettled([
      queue.submit(puts('a')),
      queue.submit(puts('bad')),
      queue.submit(puts('c')),
      queue.submit(puts('d')),
    ]);
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      ['rejected', 'rejected', 'fulfilled', 'fulfilled'],
    );
    const [first, second] = outcomes;
    assert.ok(first?.status === 'rejected' && second?.status === 'rejected');
    assert.match(String(first.reason), /disk full while writing bad/);
    assert.equal(first.reason, second.reason, 'the same error for every job of the transaction');
    assert.deepEqual(applier.transactions, [['c', 'd']]);
    assert.equal(queue.queued, 0);
    assert.deepEqual(resultKeys(await queue.submit(puts('e'))), ['e']);
  });

  test('a large job that fails stores none of its mutations and frees its queue space', async () => {
    const applier = new FakeApplier();
    applier.poison.add('k5');
    const queue = newQueue(applier, 2, 10);
    const big = queue.submit(puts(...range('k', 6)));
    const after = queue.submit(puts('z'));
    await assert.rejects(big, /disk full while writing k5/);
    assert.deepEqual(resultKeys(await after), ['z']);
    assert.deepEqual(applier.transactions, [['z']], 'no part of the failed job was committed');
    assert.equal(queue.queued, 0);
    assert.deepEqual(resultKeys(await queue.submit(puts(...range('n', 10)))), range('n', 10));
  });
});

describe('WriteQueue close', () => {
  test('close() commits what is queued, then refuses new work with SHUTTING_DOWN', async () => {
    const applier = new FakeApplier();
    const queue = newQueue(applier, 2);
    const pending = [queue.submit(puts('a', 'b', 'c')), queue.submit(puts('d'))];
    await queue.close();
    assert.deepEqual(applier.transactions, [['a', 'b', 'c'], ['d']]);
    assert.deepEqual(resultKeys(await pending[0]!), ['a', 'b', 'c']);
    assert.deepEqual(resultKeys(await pending[1]!), ['d']);
    const error = await rejectsPeerkv(queue.submit(puts('late')), 'SHUTTING_DOWN');
    assert.equal(error.status, 503);
    await nextTurn();
    assert.equal(applier.transactions.length, 2, 'no transaction after close');
  });

  test('close() on an idle queue resolves and still refuses new work', async () => {
    const queue = newQueue(new FakeApplier());
    await queue.close();
    await rejectsPeerkv(queue.submit(puts('a')), 'SHUTTING_DOWN');
  });

  test('close() settles the jobs of a failing transaction too and does not loop', async () => {
    const applier = new FakeApplier();
    applier.poison.add('bad');
    const queue = newQueue(applier, 1);
    const failing = queue.submit(puts('bad'));
    const fine = queue.submit(puts('ok'));
    await queue.close();
    await assert.rejects(failing, /disk full/);
    assert.deepEqual(resultKeys(await fine), ['ok']);
  });
});

/** An applier whose commits are on disk only when the test says so (KvStore.flushed()). */
class FlushingApplier extends FakeApplier {
  readonly flushes: { resolve(): void; reject(error: unknown): void }[] = [];

  flushed(): Promise<void> {
    return new Promise((resolve, reject) => this.flushes.push({ resolve, reject }));
  }
}

describe('WriteQueue with commits flushed off the event loop', () => {
  test('a write is answered, and onCommit told, only once its commit is flushed, in commit order', async () => {
    const applier = new FlushingApplier();
    const told: string[][] = [];
    const queue = new WriteQueue(applier, {
      commitMutationsMax: 1,
      queuedMutationsMax: 100,
      onCommit: (_results, mutations) => told.push(mutations.map(keyOf)),
    });
    const answered: string[] = [];
    const first = queue.submit(puts('a')).then((results) => answered.push(...resultKeys(results)));
    const second = queue.submit(puts('b')).then((results) => answered.push(...resultKeys(results)));
    while (applier.transactions.length < 2) await nextTurn();
    assert.deepEqual(answered, [], 'committed, not yet on disk: nobody is answered');
    assert.deepEqual(told, []);
    applier.flushes[0]!.resolve();
    await first;
    assert.deepEqual(answered, ['a']);
    applier.flushes[1]!.resolve();
    await second;
    assert.deepEqual(answered, ['a', 'b']);
    assert.deepEqual(told, [['a'], ['b']]);
  });

  test('a failed flush fails the writes it covered; close() waits for the flush', async () => {
    const applier = new FlushingApplier();
    let told = 0;
    const queue = new WriteQueue(applier, {
      commitMutationsMax: 100,
      queuedMutationsMax: 100,
      onCommit: () => {
        told += 1;
      },
    });
    const failing = queue.submit(puts('a', 'b'));
    while (applier.flushes.length < 1) await nextTurn();
    applier.flushes[0]!.reject(new Error('EIO'));
    await assert.rejects(failing, /EIO/);
    assert.equal(told, 1, 'the rows are committed: onCommit still hears of them');
    const pending = queue.submit(puts('c'));
    while (applier.flushes.length < 2) await nextTurn();
    let closed = false;
    const closing = queue.close().then(() => {
      closed = true;
    });
    await nextTurn();
    assert.equal(closed, false, 'close() waits for the last flush');
    applier.flushes[1]!.resolve();
    await closing;
    assert.deepEqual(resultKeys(await pending), ['c']);
  });
});

describe('WriteQueue hold', () => {
  test('commits nothing while held, then commits what queued in one transaction', async () => {
    const applier = new FakeApplier();
    const queue = newQueue(applier);
    const release = queue.hold();
    const writes = [queue.submit(puts('a')), queue.submit(puts('b')), queue.submit(puts('c'))];
    for (let turn = 0; turn < 5; turn += 1) await nextTurn();
    assert.deepEqual(applier.transactions, [], 'held: nothing committed');
    release();
    release(); // a second call is a no-op
    await Promise.all(writes);
    assert.deepEqual(applier.transactions, [['a', 'b', 'c']]);
  });

  test('two holds: commits wait for both', async () => {
    const applier = new FakeApplier();
    const queue = newQueue(applier);
    const first = queue.hold();
    const second = queue.hold();
    const write = queue.submit(puts('a'));
    first();
    for (let turn = 0; turn < 3; turn += 1) await nextTurn();
    assert.deepEqual(applier.transactions, []);
    second();
    await write;
    assert.deepEqual(applier.transactions, [['a']]);
  });
});

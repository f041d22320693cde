// Goal: a resync takes from a peer only what the peer declared, in order and inside the asked
// buckets; method: PageGuard and planRounds fed honest and hostile pages built from real keys.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketOf } from '../../src/store/digest.ts';
import type { Entry } from '../../src/store/types.ts';
import { PageGuard, PeerBadAnswerError, rowsAllowed } from '../../src/sync/page-guard.ts';
import { planRounds } from '../../src/sync/resync.ts';

const VERSION = { timestamp: 1, nodeId: '0000000000000001' };

/** `count` keys of `bucket`, in byte order. */
function keysOf(bucket: number, count: number, prefix = 'k'): string[] {
  const keys: string[] = [];
  for (let n = 0; keys.length < count; n += 1) {
    if (bucketOf(`${prefix}${n}`) === bucket) keys.push(`${prefix}${n}`);
  }
  return keys.sort();
}

function entries(keys: readonly string[]): Entry[] {
  return keys.map((key) => ({ key, valueJson: '1', version: VERSION }) as unknown as Entry);
}

test('an honest paged read passes', () => {
  const [a, b] = [5, 9];
  const guard = new PageGuard([a, b], 10);
  const first = keysOf(a, 3);
  guard.accept(entries(first), { bucket: a, key: first[2]! });
  guard.accept(entries(keysOf(b, 4)), null);
  assert.equal(guard.rows, 7);
});

test('more rows than declared, keys outside the buckets, stalls and rewinds are refused', () => {
  const a = 5;
  const keys = keysOf(a, 6);
  const refuses = (run: (guard: PageGuard) => void, pattern: RegExp): void => {
    assert.throws(
      () => run(new PageGuard([a], 5)),
      (error: unknown) => {
        assert.ok(error instanceof PeerBadAnswerError);
        assert.equal(error.code, 'PEER_BAD_ANSWER');
        assert.match(error.message, pattern);
        return true;
      },
    );
  };
  refuses((g) => g.accept(entries(keys), null), /more than the 5/);
  refuses((g) => g.accept(entries(keysOf(6, 1)), null), /outside the asked buckets/);
  refuses((g) => g.accept([], { bucket: a, key: keys[0]! }), /empty page/);
  refuses((g) => g.accept(entries(keys.slice(0, 2)), { bucket: 6, key: 'x' }), /cursor outside/);
  refuses((g) => g.accept(entries([keys[1]!, keys[0]!]), null), /out of order/);
  refuses((g) => {
    g.accept(entries(keys.slice(2, 4)), { bucket: a, key: keys[3]! });
    g.accept(entries(keys.slice(0, 1)), null);
  }, /out of order/);
  refuses((g) => g.accept(entries(keys.slice(2, 3)), { bucket: a, key: keys[0]! }), /went back/);
});

test('rowsAllowed adds a margin for writes during the resync', () => {
  assert.equal(rowsAllowed(0, 1_000, 0.1), 1_000);
  assert.equal(rowsAllowed(100_000, 1_000, 0.1), 110_000);
});

test('planRounds bounds the rows of a round and refuses an implausible bucket', () => {
  const buckets = Array.from({ length: 10 }, (_, bucket) => ({
    bucket,
    localCount: 60_000,
    remoteCount: 10,
  }));
  const rounds = planRounds(buckets);
  assert.deepEqual(
    rounds.map((round) => round.length),
    [3, 3, 3, 1],
  );
  const small = Array.from({ length: 130 }, (_, bucket) => ({
    bucket,
    localCount: 1,
    remoteCount: 1,
  }));
  assert.deepEqual(
    planRounds(small).map((round) => round.length),
    [64, 64, 2],
  );
  assert.throws(
    () => planRounds([{ bucket: 0, localCount: 0, remoteCount: 2 ** 40 }]),
    PeerBadAnswerError,
  );
});

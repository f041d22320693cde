// Checks invariant 3 (the merge keeps the highest version and is idempotent, commutative and associative) by applying fast-check-generated remote entries, with colliding keys, tombstones and duplicates, to separate KvStore instances in different orders and batchings and comparing their content and digest roots.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { BucketDigest, bucketOf, entryHash } from '../../src/store/digest.ts';
import type { KvStore } from '../../src/store/kv-store.ts';
import { compareMergeOrder } from '../../src/store/merge-order.ts';
import type { Entry } from '../../src/store/types.ts';
import { formatVersion, type Version } from '../../src/version.ts';
import { applyRemote, dumpContent, openStore, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const RUNS = 60;
const KEYS = ['a', 'b', 'c', 'd', 'é', 'k/1'];
const NODES = ['0000000000000001', '00000000000000aa', 'ffffffffffffffff'];

const versionArb: fc.Arbitrary<Version> = fc
  .tuple(fc.integer({ min: 1, max: 12 }), fc.constantFrom(...NODES))
  .map(([timestamp, nodeId]) => ({ timestamp, nodeId }));
const valueArb = fc.oneof(
  fc.constant(null),
  fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)),
);
const entryArb: fc.Arbitrary<Entry> = fc
  .tuple(fc.constantFrom(...KEYS), versionArb, valueArb)
  .map(([key, version, valueJson]) => ({ key, version, valueJson }));

/** One key and version never carry two contents: a node issues each timestamp once. */
const entriesArb = fc.uniqueArray(entryArb, {
  selector: (entry) => `${entry.key} ${formatVersion(entry.version)}`,
  minLength: 1,
  maxLength: 30,
});

/**
 * Two nodes sharing a node id (a copied data dir) can issue one version twice
 * with different content: equal versions, different values.
 */
const collidingEntriesArb = fc.uniqueArray(entryArb, {
  selector: (entry) => `${entry.key} ${formatVersion(entry.version)} ${entry.valueJson}`,
  minLength: 1,
  maxLength: 30,
});

const full = <T>(items: readonly T[]) =>
  fc.shuffledSubarray([...items], { minLength: items.length, maxLength: items.length });

const scenarioOf = (entriesOf: fc.Arbitrary<Entry[]>) =>
  entriesOf.chain((entries) =>
    fc
      .record({
        shuffled: full(entries),
        duplicates: fc.subarray(entries),
        batchSizes: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 8 }),
        cut: fc.tuple(fc.nat(entries.length), fc.nat(entries.length)),
      })
      .chain((parts) =>
        fc.record({
          entries: fc.constant(entries),
          shuffled: fc.constant(parts.shuffled),
          batchSizes: fc.constant(parts.batchSizes),
          cut: fc.constant(parts.cut),
          withDuplicates: full([...entries, ...parts.duplicates, ...parts.duplicates]),
        }),
      ),
  );
const scenarioArb = scenarioOf(entriesArb);
const collidingScenarioArb = scenarioOf(collidingEntriesArb);

function splitIntoBatches<T>(items: readonly T[], sizes: readonly number[]): T[][] {
  const batches: T[][] = [];
  let start = 0;
  for (let index = 0; start < items.length; index += 1) {
    const size = sizes[index % sizes.length]!;
    batches.push(items.slice(start, start + size));
    start += size;
  }
  return batches;
}

const ranked = (entry: Entry) => ({
  version: entry.version,
  hash: entryHash(entry.key, formatVersion(entry.version), entry.valueJson),
});

/**
 * For each key, the entry first in merge order (highest version, then highest
 * content hash): what every store must end up with.
 */
function expectedWinners(entries: readonly Entry[]): Map<string, Entry> {
  const winners = new Map<string, Entry>();
  for (const entry of entries) {
    const current = winners.get(entry.key);
    if (!current || compareMergeOrder(ranked(entry), ranked(current)) > 0)
      winners.set(entry.key, entry);
  }
  return winners;
}

function expectedDump(winners: Map<string, Entry>): string[] {
  return [...winners.values()]
    .map(
      (entry) => `${JSON.stringify(entry.key)} ${formatVersion(entry.version)} ${entry.valueJson}`,
    )
    .sort();
}

function expectedRoot(winners: Map<string, Entry>): string {
  const digest = new BucketDigest();
  for (const entry of winners.values()) {
    digest.replace(
      bucketOf(entry.key),
      null,
      entryHash(entry.key, formatVersion(entry.version), entry.valueJson),
    );
  }
  return digest.root();
}

/** A store's whole content as entries, as a resync would send it. */
function contentOf(store: KvStore): Entry[] {
  return store
    .changesSince(0, 100_000)
    .map(({ key, valueJson, version }) => ({ key, valueJson, version }));
}

/** Opens fresh stores for one run and always closes and deletes them. */
function withStores(count: number, run: (stores: KvStore[]) => void): void {
  const opened: { store: KvStore; dir: string }[] = [];
  try {
    for (let index = 0; index < count; index += 1) {
      const dir = dirs.newDir();
      opened.push({ store: openStore(dir), dir });
    }
    run(opened.map(({ store }) => store));
  } finally {
    for (const { store, dir } of opened) {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

function checkScenario({ entries, shuffled, withDuplicates, batchSizes, cut }: Scenario): void {
  withStores(5, ([oneByOne, oneBatch, batched, partial, grouped]) => {
    assert.ok(oneByOne && oneBatch && batched && partial && grouped);
    // In the generated order, one transaction per entry.
    for (const entry of entries) applyRemote(oneByOne, [entry]);
    // Another order, all in one transaction (several versions of a key in one transaction).
    applyRemote(oneBatch, shuffled);
    // Another order with duplicates, split into batches of random sizes.
    for (const batch of splitIntoBatches(withDuplicates, batchSizes)) applyRemote(batched, batch);
    // Associativity: grouped = Z merged with (X merged with Y), X, Y, Z cut from the generated order.
    const [low, high] = [Math.min(...cut), Math.max(...cut)];
    applyRemote(partial, entries.slice(0, low));
    applyRemote(partial, entries.slice(low, high));
    applyRemote(grouped, entries.slice(high));
    applyRemote(grouped, contentOf(partial), partial.nodeId);

    const winners = expectedWinners(entries);
    const dump = expectedDump(winners);
    const root = expectedRoot(winners);
    for (const [name, store] of Object.entries({ oneByOne, oneBatch, batched, grouped })) {
      assert.deepEqual(dumpContent(store), dump, `${name}: content`);
      assert.equal(store.digest.root(), root, `${name}: digest root`);
      assert.equal(store.digest.entryCount(), winners.size, `${name}: entry count`);
      for (const winner of winners.values()) {
        const held = store.get(winner.key);
        assert.deepEqual(held, winner, `${name}: key ${winner.key}`);
        const live = store.list(winner.key, '', 1_000).some((entry) => entry.key === winner.key);
        assert.equal(live, winner.valueJson !== null, `${name}: ${winner.key} listed iff live`);
      }
    }
  });
}

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

describe('merge of remote entries (invariant 3)', () => {
  test('every order, batching and grouping ends with the same content and root: the highest version per key', () => {
    fc.assert(fc.property(scenarioArb, checkScenario), { numRuns: RUNS });
  });

  test('equal versions with different content (a shared node id) converge too: ties go to the higher content hash', () => {
    fc.assert(fc.property(collidingScenarioArb, checkScenario), { numRuns: 15 });
  });

  test('applying the same entries again is a no-op (idempotent): nothing applied, root and seq unchanged', () => {
    fc.assert(
      fc.property(entriesArb, (entries) => {
        withStores(1, ([store]) => {
          assert.ok(store);
          applyRemote(store, entries);
          const seq = store.seq;
          const root = store.digest.root();
          const content = dumpContent(store);
          const again = applyRemote(store, [...entries].reverse());
          assert.ok(
            again.every((result) => !result.applied),
            'no entry applied twice',
          );
          assert.equal(store.seq, seq);
          assert.equal(store.digest.root(), root);
          assert.deepEqual(dumpContent(store), content);
          // Re-sending the store's own content (a resync in the other direction) changes nothing either.
          const echoed = applyRemote(store, contentOf(store));
          assert.ok(echoed.every((result) => !result.applied));
          assert.equal(store.seq, seq);
        });
      }),
      { numRuns: 30 },
    );
  });

  test('a remote entry with a lower or equal version is not applied and changes nothing', () => {
    // One store for all runs; each run uses its own key so runs do not interfere.
    const store = openStore(dirs.newDir());
    let run = 0;
    const stored = fc.tuple(
      fc.integer({ min: 2, max: 1_000 }),
      fc.constantFrom(...NODES),
      valueArb,
    );
    const lowerOrEqual = fc.oneof(
      fc.constant('equal' as const),
      fc.constant('earlier timestamp' as const),
      fc.constant('same timestamp, lower node' as const),
    );
    try {
      fc.assert(
        fc.property(
          stored,
          lowerOrEqual,
          valueArb,
          ([timestamp, nodeId, valueJson], how, otherValue) => {
            run += 1;
            const key = `run-${run}`;
            const version = { timestamp, nodeId };
            const [first] = applyRemote(store, [{ key, valueJson, version }]);
            assert.equal(first?.applied, true);
            let loser: Version;
            if (how === 'equal') loser = { ...version };
            else if (how === 'earlier timestamp')
              loser = { timestamp: timestamp - 1, nodeId: 'ffffffffffffffff' };
            else {
              fc.pre(nodeId !== NODES[0]);
              loser = { timestamp, nodeId: NODES[0]! };
            }
            const seq = store.seq;
            const root = store.digest.root();
            // An equal version loses only with equal content (ties with other content: below).
            const incoming = how === 'equal' ? valueJson : otherValue;
            const [result] = applyRemote(store, [{ key, valueJson: incoming, version: loser }]);
            assert.equal(result?.applied, false, how);
            assert.deepEqual(result?.version, version, 'reports the version the key keeps');
            assert.equal(result?.existed, valueJson !== null);
            assert.equal(store.seq, seq, 'no sequence number taken');
            assert.equal(store.digest.root(), root, 'root unchanged');
            assert.deepEqual(store.get(key), { key, valueJson, version });
          },
        ),
        { numRuns: 200 },
      );
    } finally {
      store.close();
    }
  });

  test('equal versions with different content: the higher content hash wins from either side', () => {
    withStores(2, ([first, second]) => {
      assert.ok(first && second);
      const version = { timestamp: 7, nodeId: NODES[1]! };
      const red = { key: 'color', valueJson: '"red"', version };
      const blue = { key: 'color', valueJson: '"blue"', version };
      const [winner, loser] =
        compareMergeOrder(ranked(red), ranked(blue)) > 0 ? [red, blue] : [blue, red];
      assert.deepEqual(
        applyRemote(first, [loser, winner]).map((r) => r.applied),
        [true, true],
      );
      assert.deepEqual(
        applyRemote(second, [winner, loser]).map((r) => r.applied),
        [true, false],
      );
      for (const store of [first, second]) assert.deepEqual(store.get('color'), winner);
      assert.equal(first.digest.root(), second.digest.root());
    });
  });

  test('a deleted key never comes back through an older write, in any order', () => {
    withStores(2, ([forward, backward]) => {
      assert.ok(forward && backward);
      const put = { key: 'x', valueJson: '"v"', version: { timestamp: 10, nodeId: NODES[1]! } };
      const tombstone = {
        key: 'x',
        valueJson: null,
        version: { timestamp: 11, nodeId: NODES[0]! },
      };
      applyRemote(forward, [put]);
      applyRemote(forward, [tombstone]);
      applyRemote(backward, [tombstone]);
      const [late] = applyRemote(backward, [put]);
      assert.equal(late?.applied, false);
      for (const store of [forward, backward]) {
        assert.equal(store.get('x')?.valueJson, null);
        assert.deepEqual(store.list('', '', 10), []);
      }
      assert.equal(forward.digest.root(), backward.digest.root());
    });
  });
});

// Checks that expiring entries keep the merge idempotent, commutative and associative and the
// digest exact: fast-check draws entries with and without an expiry, some already swept (value
// dropped, value digest kept), applies them in different orders and groupings to separate stores,
// sweeps some stores and not others, and compares versions, reads and digest roots; also that
// the sweep keeps the row (an older version sent later is refused) and the wire form round-trips.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { validateReplicate } from '../../src/http/validate.ts';
import { valueDigest } from '../../src/store/digest.ts';
import type { KvStore } from '../../src/store/kv-store.ts';
import type { Entry } from '../../src/store/types.ts';
import { entryJson } from '../../src/store/wire.ts';
import { formatVersion } from '../../src/version.ts';
import { applyRemote, openStore, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const NOW_MS = 1_800_000_000_000;
const KEYS = ['a', 'b', 'c', 'k/1'];
const NODES = ['0000000000000001', '00000000000000aa', 'ffffffffffffffff'];

interface Drawn {
  readonly entry: Entry;
  /** Deliver the swept form (value dropped) where the entry has expired. */
  readonly swept: boolean;
}

const drawnArb: fc.Arbitrary<Drawn> = fc
  .record({
    key: fc.constantFrom(...KEYS),
    timestamp: fc.integer({ min: 1, max: 12 }),
    nodeId: fc.constantFrom(...NODES),
    value: fc.oneof(
      fc.constant(null),
      fc.jsonValue({ maxDepth: 1 }).map((v) => JSON.stringify(v)),
    ),
    expiry: fc.option(fc.integer({ min: -5_000, max: 5_000 }), { nil: undefined }),
    swept: fc.boolean(),
  })
  .map(({ key, timestamp, nodeId, value, expiry, swept }) => {
    const version = { timestamp, nodeId };
    if (value === null || expiry === undefined) {
      return { entry: { key, valueJson: value, version }, swept: false };
    }
    return { entry: { key, valueJson: value, version, expiresAt: NOW_MS + expiry }, swept };
  });

const drawnListArb = fc.uniqueArray(drawnArb, {
  selector: (d) => `${d.entry.key} ${formatVersion(d.entry.version)}`,
  minLength: 1,
  maxLength: 24,
});

/** The form delivered: an expired entry may arrive swept. */
function delivered(d: Drawn): Entry {
  const { entry } = d;
  if (!d.swept || entry.valueJson === null || (entry.expiresAt ?? Infinity) > NOW_MS) return entry;
  return { ...entry, valueJson: null, valueHash: valueDigest(entry.valueJson) };
}

function sweep(store: KvStore): void {
  const expired = store.expiredKeys(NOW_MS, 1_000);
  store.applyMutations(expired.map(({ key, version }) => ({ kind: 'expire', key, version })));
}

function withStores(count: number, run: (stores: KvStore[]) => void): void {
  const opened = Array.from({ length: count }, () => {
    const dir = dirs.newDir();
    return { store: openStore(dir, () => NOW_MS), dir };
  });
  try {
    run(opened.map(({ store }) => store));
  } finally {
    for (const { store, dir } of opened) {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** What a reader sees, and the version held, per key. */
function view(store: KvStore): string {
  return KEYS.map((key) => {
    const held = store.get(key);
    const live = store.getLive(key);
    return `${key}:${held ? formatVersion(held.version) : '-'}:${live?.valueJson ?? 'absent'}`;
  }).join(' ');
}

describe('merge of expiring entries', () => {
  test('order, grouping, swept or not: same versions, same reads, same root', () => {
    fc.assert(
      fc.property(
        drawnListArb.chain((list) =>
          fc.record({
            list: fc.constant(list),
            order: fc.shuffledSubarray(list, { minLength: list.length }),
            cut: fc.nat(list.length),
          }),
        ),
        ({ list, order, cut }) => {
          withStores(4, ([inOrder, shuffled, grouped, sweptEarly]) => {
            for (const d of list) applyRemote(inOrder!, [delivered(d)]);
            applyRemote(shuffled!, order.map(delivered));
            sweep(shuffled!);
            applyRemote(grouped!, list.slice(cut).map(delivered));
            applyRemote(
              grouped!,
              list.slice(0, cut).map((d) => d.entry),
            );
            applyRemote(
              sweptEarly!,
              list.slice(0, cut).map((d) => d.entry),
            );
            sweep(sweptEarly!);
            applyRemote(
              sweptEarly!,
              list.slice(cut).map((d) => d.entry),
            );
            sweep(sweptEarly!);
            const root = inOrder!.digest.root();
            const reads = view(inOrder!);
            for (const store of [shuffled!, grouped!, sweptEarly!]) {
              assert.equal(store.digest.root(), root, 'digest root');
              assert.equal(view(store), reads, 'versions and reads');
            }
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  test('applying the same entries again, swept or not, changes nothing (idempotent)', () => {
    fc.assert(
      fc.property(drawnListArb, (list) => {
        withStores(1, ([store]) => {
          applyRemote(store!, list.map(delivered));
          sweep(store!);
          const root = store!.digest.root();
          const seq = store!.seq;
          const again = applyRemote(
            store!,
            list.map((d) => d.entry),
          );
          assert.ok(again.every((result) => !result.applied));
          assert.equal(store!.digest.root(), root);
          assert.equal(store!.seq, seq);
        });
      }),
      { numRuns: 30 },
    );
  });
});

describe('the expiry sweep', () => {
  test('drops the value, keeps version and hash, takes a seq, and no older value comes back', () => {
    withStores(1, ([store]) => {
      const older = { key: 'k', valueJson: '"old"', version: { timestamp: 5, nodeId: NODES[0]! } };
      const newer = {
        key: 'k',
        valueJson: '"new"',
        version: { timestamp: 9, nodeId: NODES[0]! },
        expiresAt: NOW_MS - 1,
      };
      applyRemote(store!, [newer]);
      const root = store!.digest.root();
      const seq = store!.seq;
      sweep(store!);
      assert.equal(store!.seq, seq + 1, 'the sweep is a change watchers see');
      assert.equal(store!.digest.root(), root, 'the hash is unchanged');
      assert.deepEqual(store!.get('k'), {
        ...newer,
        valueJson: null,
        valueHash: valueDigest('"new"'),
      });
      assert.equal(applyRemote(store!, [older])[0]!.applied, false, 'the older value stays out');
      assert.equal(store!.getLive('k'), undefined);
      assert.equal(store!.expiredKeys(NOW_MS, 10).length, 0, 'nothing left to sweep');
    });
  });

  test('the wire form of every kind of entry parses back to the same entry', () => {
    const entries: Entry[] = [
      { key: 'live', valueJson: '1', version: { timestamp: 3, nodeId: NODES[1]! } },
      { key: 'gone', valueJson: null, version: { timestamp: 4, nodeId: NODES[1]! } },
      {
        key: 'ttl',
        valueJson: '{"a":1}',
        version: { timestamp: 5, nodeId: NODES[2]! },
        expiresAt: NOW_MS,
      },
      {
        key: 'swept',
        valueJson: null,
        version: { timestamp: 6, nodeId: NODES[2]! },
        expiresAt: NOW_MS,
        valueHash: valueDigest('2'),
      },
    ];
    const body = JSON.parse(`{"entries":[${entries.map(entryJson).join(',')}]}`);
    const parsed = validateReplicate(body, 1_000_000);
    assert.equal(parsed.kind, 'batch');
    if (parsed.kind === 'batch') assert.deepEqual(parsed.entries, entries);
  });
});

describe('expiring entries from peers are validated', () => {
  const version = '0000000000000a-00000000000000aa';
  const cases: [string, Record<string, unknown>][] = [
    ['expiresAt not a number', { key: 'k', value: 1, version, expiresAt: '5' }],
    ['expiresAt zero', { key: 'k', value: 1, version, expiresAt: 0 }],
    ['expiresAt fraction', { key: 'k', value: 1, version, expiresAt: 1.5 }],
    ['tombstone with expiry', { key: 'k', deleted: true, version, expiresAt: 5 }],
    ['expired without hash', { key: 'k', expired: true, version, expiresAt: 5 }],
    ['expired with bad hash', { key: 'k', expired: true, version, expiresAt: 5, valueHash: 'zz' }],
    ['expired without expiry', { key: 'k', expired: true, version, valueHash: valueDigest('1') }],
    [
      'expired with value',
      { key: 'k', expired: true, value: 1, version, expiresAt: 5, valueHash: valueDigest('1') },
    ],
    [
      'hash on a live entry',
      { key: 'k', value: 1, version, expiresAt: 5, valueHash: valueDigest('1') },
    ],
    ['expired not boolean', { key: 'k', value: 1, version, expired: 'yes' }],
  ];
  for (const [what, entry] of cases) {
    test(`refused: ${what}`, () => {
      assert.throws(
        () => validateReplicate({ entries: [entry] }, 1_000),
        (error: Error & { code?: string }) => error.code === 'BAD_BATCH',
      );
    });
  }
});

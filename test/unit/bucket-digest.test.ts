// Checks that the bucketed digest depends only on the set of entries (any order, with replaced entries and tombstones), tells different content apart, wraps its sums modulo 2^48, and that its group exchange format round-trips and refuses malformed input; by fixed cases and fast-check properties.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  addHash,
  BUCKETS,
  BUCKETS_PER_GROUP,
  BucketDigest,
  bucketOf,
  entryHash,
  GROUPS,
  subtractHash,
  valueDigest,
} from '../../src/store/digest.ts';

const MODULUS = 2 ** 48;
const NODE = 'a1b2c3d4e5f60718';

interface DigestEntry {
  readonly key: string;
  readonly version: string;
  readonly valueJson: string | null;
}

/** Keeps the key -> hash map a store would keep, and feeds replace() like the store does. */
class DigestModel {
  readonly digest = new BucketDigest();
  readonly #hashes = new Map<string, number>();

  put(entry: DigestEntry): void {
    const next = entryHash(entry.key, entry.version, entry.valueJson);
    this.digest.replace(bucketOf(entry.key), this.#hashes.get(entry.key) ?? null, next);
    this.#hashes.set(entry.key, next);
  }
}

function digestOf(entries: readonly DigestEntry[]): BucketDigest {
  const model = new DigestModel();
  for (const entry of entries) model.put(entry);
  return model.digest;
}

const versionArb = fc
  .tuple(fc.integer({ min: 1, max: 1_000 }), fc.constantFrom(NODE, '0000000000000001'))
  .map(([timestamp, node]) => `${timestamp.toString(16).padStart(14, '0')}-${node}`);
const valueArb = fc.oneof(
  fc.constant(null),
  fc.string().map((text) => JSON.stringify(text)),
  fc.jsonValue().map((value) => JSON.stringify(value)),
);
const keyArb = fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('a', 'b', 'é'));
const entryArb: fc.Arbitrary<DigestEntry> = fc
  .tuple(keyArb, versionArb, valueArb)
  .map(([key, version, valueJson]) => ({ key, version, valueJson }));

describe('BucketDigest root', () => {
  test('an empty digest has a fixed root and no entries', () => {
    assert.equal(new BucketDigest().root(), new BucketDigest().root());
    assert.equal(new BucketDigest().entryCount(), 0);
    assert.match(new BucketDigest().root(), /^[0-9a-f]{64}$/);
  });

  test('is the same for the same final entries added in any order, with replaced entries', () => {
    const scenario = fc
      .uniqueArray(entryArb, { selector: (entry) => entry.key, maxLength: 40 })
      .chain((finals) =>
        fc.record({
          finals: fc.constant(finals),
          shuffled: fc.shuffledSubarray(finals, {
            minLength: finals.length,
            maxLength: finals.length,
          }),
          // Entries written earlier for some of the same keys, then replaced by the final ones.
          earlier: fc.array(fc.tuple(fc.nat(), versionArb, valueArb), { maxLength: 30 }),
        }),
      );
    fc.assert(
      fc.property(scenario, ({ finals, shuffled, earlier }) => {
        const straight = digestOf(finals);
        const replaced = new DigestModel();
        if (finals.length > 0) {
          for (const [pick, version, valueJson] of earlier) {
            replaced.put({ key: finals[pick % finals.length]!.key, version, valueJson });
          }
        }
        for (const entry of shuffled) replaced.put(entry);
        assert.equal(replaced.digest.root(), straight.root());
        assert.deepEqual(replaced.digest.groupHashes(), straight.groupHashes());
        assert.equal(replaced.digest.entryCount(), finals.length);
        assert.deepEqual(replaced.digest.counts, straight.counts);
      }),
      { numRuns: 300 },
    );
  });

  test('differs when one entry differs in key, version, value or tombstone', () => {
    const base: DigestEntry[] = [
      { key: 'alpha', version: `00000000000010-${NODE}`, valueJson: '"one"' },
      { key: 'beta', version: `00000000000011-${NODE}`, valueJson: '2' },
      { key: 'gone', version: `00000000000012-${NODE}`, valueJson: null },
    ];
    const root = digestOf(base).root();
    const variants: [string, DigestEntry][] = [
      ['value', { ...base[0]!, valueJson: '"two"' }],
      ['version timestamp', { ...base[0]!, version: `00000000000013-${NODE}` }],
      ['version node', { ...base[0]!, version: '00000000000010-0000000000000001' }],
      ['tombstone instead of value', { ...base[0]!, valueJson: null }],
      ['value instead of tombstone', { ...base[2]!, valueJson: 'null' }],
      ['key', { ...base[0]!, key: 'alpha2' }],
    ];
    for (const [what, changed] of variants) {
      const entries = base.map((entry) => (entry.key === changed.key ? changed : entry));
      if (!base.some((entry) => entry.key === changed.key)) entries[0] = changed;
      assert.notEqual(digestOf(entries).root(), root, `changing the ${what}`);
    }
    assert.notEqual(digestOf(base.slice(1)).root(), root, 'one entry fewer');
    assert.notEqual(
      digestOf([...base, { ...base[0]!, key: 'alpha-copy' }]).root(),
      root,
      'one entry more',
    );
  });

  test('two equal entry hashes in one bucket do not cancel out (unlike XOR)', () => {
    const digest = new BucketDigest();
    digest.replace(7, null, 12_345);
    digest.replace(7, null, 12_345);
    assert.equal(digest.sums[7], 24_690);
    assert.notEqual(digest.root(), new BucketDigest().root());
  });

  test('different random contents give different roots', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(entryArb, { selector: (entry) => entry.key, minLength: 1, maxLength: 20 }),
        fc.nat(),
        valueArb,
        (entries, pick, valueJson) => {
          const index = pick % entries.length;
          fc.pre(entries[index]!.valueJson !== valueJson);
          const changed = entries.map((entry, at) =>
            at === index ? { ...entry, valueJson } : entry,
          );
          assert.notEqual(digestOf(changed).root(), digestOf(entries).root());
        },
      ),
      { numRuns: 300 },
    );
  });

  test('entry hashes frame the key, so shifting bytes between key and version changes the hash', () => {
    const version = `00000000000010-${NODE}`;
    assert.notEqual(entryHash('a', version, '"x"'), entryHash('a\u0000', version, '"x"'));
    assert.notEqual(entryHash('k', version, 'null'), entryHash('k', version, null));
    const hash = entryHash('k', version, '"v"');
    assert.ok(Number.isInteger(hash) && hash >= 0 && hash < MODULUS);
  });
});

describe('bucket sums modulo 2^48', () => {
  test('addHash wraps around at 2^48', () => {
    assert.equal(addHash(MODULUS - 1, 1), 0);
    assert.equal(addHash(MODULUS - 5, 10), 5);
    assert.equal(addHash(MODULUS - 1, MODULUS - 1), MODULUS - 2);
    assert.equal(addHash(0, 0), 0);
  });

  test('subtractHash wraps around below zero', () => {
    assert.equal(subtractHash(0, 1), MODULUS - 1);
    assert.equal(subtractHash(3, 5), MODULUS - 2);
    assert.equal(subtractHash(0, MODULUS - 1), 1);
    assert.equal(subtractHash(9, 9), 0);
  });

  test('subtract undoes add, and the order of additions does not matter', () => {
    const hashArb = fc.integer({ min: 0, max: MODULUS - 1 });
    fc.assert(
      fc.property(hashArb, hashArb, hashArb, (sum, a, b) => {
        const added = addHash(sum, a);
        assert.ok(added >= 0 && added < MODULUS && Number.isInteger(added));
        assert.equal(subtractHash(added, a), sum);
        assert.equal(addHash(addHash(sum, a), b), addHash(addHash(sum, b), a));
      }),
      { numRuns: 2_000 },
    );
  });

  test('replace() wraps a bucket sum and keeps the count', () => {
    const digest = new BucketDigest();
    digest.setBucket(3, MODULUS - 2, 1);
    digest.replace(3, null, 5);
    assert.equal(digest.sums[3], 3);
    assert.equal(digest.counts[3], 2);
    digest.replace(3, 5, 1);
    assert.equal(digest.sums[3], MODULUS - 1);
    assert.equal(digest.counts[3], 2, 'replacing an entry keeps the count');
  });

  test('the root changes after every replace and setBucket (no stale cache)', () => {
    const digest = new BucketDigest();
    const roots = new Set([digest.root()]);
    digest.replace(0, null, 1);
    roots.add(digest.root());
    digest.replace(BUCKETS - 1, null, 1);
    roots.add(digest.root());
    digest.setBucket(0, 0, 0);
    roots.add(digest.root());
    assert.equal(roots.size, 4);
  });

  test('the constructor refuses arrays of the wrong size', () => {
    assert.throws(() => new BucketDigest(new Float64Array(BUCKETS - 1)), RangeError);
    assert.throws(
      () => new BucketDigest(new Float64Array(BUCKETS), new Float64Array(BUCKETS + 1)),
      RangeError,
    );
  });
});

describe('hashes stored on disk and compared between nodes', () => {
  // The streaming form every data dir and every node of the cluster was hashed with.
  const streamed = (...parts: string[]) => {
    const hash = createHash('sha256');
    for (const part of parts) hash.update(part);
    return hash.digest();
  };

  test('bucketOf and entryHash keep their values (pinned, then against the streaming form)', () => {
    const version = '00000000000010-00000000000000a1';
    assert.equal(bucketOf('k1'), 2745);
    assert.equal(bucketOf('ключ/🔑'), 4011);
    assert.equal(entryHash('k1', version, '"v"'), 103798806708871);
    assert.equal(entryHash('ключ/🔑', version, null), 107438511846467);
    assert.equal(entryHash('k', version, '{"a":1}', 1700000000000), 201241497760842);
    assert.equal(valueDigest('"x"'), 'ba2df4903a2c14e86dc3bcca58911b44');
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.option(fc.string({ unit: 'binary' })),
        (key, value) => {
          assert.equal(bucketOf(key), streamed(key).readUInt16BE(0) % BUCKETS);
          const framed = [`${Buffer.byteLength(key)}:`, key, `\u0000${version}\u0000`];
          const tail = value === null ? 'D' : `P${value}`;
          assert.equal(entryHash(key, version, value), streamed(...framed, tail).readUIntBE(0, 6));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('group exchange', () => {
  test('bucketOf stays in range', () => {
    fc.assert(
      fc.property(fc.string(), (key) => {
        const bucket = bucketOf(key);
        assert.ok(Number.isInteger(bucket) && bucket >= 0 && bucket < BUCKETS);
      }),
    );
  });

  test('groupHashes gives one 16-hex hash per group, and only the changed group moves', () => {
    const digest = new BucketDigest();
    const before = digest.groupHashes();
    assert.equal(before.length, GROUPS);
    for (const hash of before) assert.match(hash, /^[0-9a-f]{16}$/);
    const bucket = 5 * BUCKETS_PER_GROUP + 3;
    digest.replace(bucket, null, 99);
    const after = digest.groupHashes();
    for (let group = 0; group < GROUPS; group += 1) {
      if (group === 5) assert.notEqual(after[group], before[group]);
      else assert.equal(after[group], before[group], `group ${group} moved`);
    }
  });
});

// Checks that validateReplicate accepts the seed's single {key,value} shape and versioned batches (values and tombstones), and rejects a whole batch with BAD_BATCH naming the index when any one entry is bad, or BATCH_TOO_LARGE past the entry limit; by fixed cases and a fast-check property over where the bad entry sits.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { validateReplicate } from '../../src/http/validate.ts';
import { limits } from '../../src/limits.ts';
import { throwsPeerkv } from './assert-peerkv-error.ts';

const NODE = 'a1b2c3d4e5f60718';
const VERSION = `00000000000abc-${NODE}`;
const VALUE_BYTES_MAX = 1_000;

const liveEntry = (key: string): Record<string, unknown> => ({
  key,
  value: { n: key },
  version: VERSION,
});

describe('validateReplicate: the seed shape', () => {
  test('accepts a single {key, value} and serialises the value', () => {
    assert.deepEqual(validateReplicate({ key: 'hello', value: 'world' }, VALUE_BYTES_MAX), {
      kind: 'single',
      key: 'hello',
      valueJson: '"world"',
    });
  });

  test('a single entry takes any JSON value, null included', () => {
    const payload = validateReplicate({ key: 'k', value: null }, VALUE_BYTES_MAX);
    assert.deepEqual(payload, { kind: 'single', key: 'k', valueJson: 'null' });
  });

  test('a single entry needs a valid key and a value within the limit', () => {
    throwsPeerkv(() => validateReplicate({ value: 'world' }, VALUE_BYTES_MAX), 'BAD_KEY');
    throwsPeerkv(() => validateReplicate({ key: '', value: 'world' }, VALUE_BYTES_MAX), 'BAD_KEY');
    throwsPeerkv(() => validateReplicate({ key: 'hello' }, VALUE_BYTES_MAX), 'BAD_VALUE');
    throwsPeerkv(
      () =>
        validateReplicate({ key: 'hello', value: 'x'.repeat(VALUE_BYTES_MAX) }, VALUE_BYTES_MAX),
      'VALUE_TOO_LARGE',
    );
  });

  for (const [name, body] of [
    ['null', null],
    ['an array', [{ key: 'a', value: 1 }]],
    ['a string', '{"key":"a"}'],
    ['a number', 7],
  ] as [string, unknown][]) {
    test(`rejects a body that is ${name} with BAD_REQUEST`, () => {
      throwsPeerkv(() => validateReplicate(body, VALUE_BYTES_MAX), 'BAD_REQUEST');
    });
  }
});

describe('validateReplicate: batches', () => {
  test('accepts live entries and tombstones with their versions', () => {
    const payload = validateReplicate(
      {
        from: NODE,
        entries: [
          { key: 'a', value: [1, 2], version: VERSION },
          { key: 'b', deleted: true, version: VERSION },
          { key: 'c', value: 'x', deleted: false, version: VERSION },
        ],
      },
      VALUE_BYTES_MAX,
    );
    assert.equal(payload.kind, 'batch');
    assert.ok(payload.kind === 'batch');
    assert.equal(payload.from, NODE);
    const version = { timestamp: 0xabc, nodeId: NODE };
    assert.deepEqual(payload.entries, [
      { key: 'a', valueJson: '[1,2]', version },
      { key: 'b', valueJson: null, version },
      { key: 'c', valueJson: '"x"', version },
    ]);
  });

  test('accepts an empty batch and a batch without from', () => {
    assert.deepEqual(validateReplicate({ entries: [] }, VALUE_BYTES_MAX), {
      kind: 'batch',
      entries: [],
      from: undefined,
    });
  });

  test('a tombstone with a value is rejected', () => {
    const error = throwsPeerkv(
      () =>
        validateReplicate(
          { entries: [{ key: 'a', deleted: true, value: 'x', version: VERSION }] },
          VALUE_BYTES_MAX,
        ),
      'BAD_BATCH',
    );
    assert.match(error.message, /^entry 0: /);
  });

  test('a live entry needs a value (null is a value)', () => {
    throwsPeerkv(
      () => validateReplicate({ entries: [{ key: 'a', version: VERSION }] }, VALUE_BYTES_MAX),
      'BAD_BATCH',
    );
    const payload = validateReplicate(
      { entries: [{ key: 'a', value: null, version: VERSION }] },
      VALUE_BYTES_MAX,
    );
    assert.ok(payload.kind === 'batch');
    assert.equal(payload.entries[0]?.valueJson, 'null');
  });

  test('entries must be an array and from a string', () => {
    throwsPeerkv(() => validateReplicate({ entries: {} }, VALUE_BYTES_MAX), 'BAD_BATCH');
    throwsPeerkv(() => validateReplicate({ entries: null }, VALUE_BYTES_MAX), 'BAD_BATCH');
    throwsPeerkv(() => validateReplicate({ entries: [], from: 7 }, VALUE_BYTES_MAX), 'BAD_BATCH');
  });

  test('accepts replicateEntriesMax entries and refuses one more with BATCH_TOO_LARGE', () => {
    const max = limits.replicateEntriesMax;
    const entries = Array.from({ length: max }, (_, index) => liveEntry(`k${index}`));
    const payload = validateReplicate({ entries }, VALUE_BYTES_MAX);
    assert.ok(payload.kind === 'batch');
    assert.equal(payload.entries.length, max);
    entries.push(liveEntry('one-more'));
    const error = throwsPeerkv(
      () => validateReplicate({ entries }, VALUE_BYTES_MAX),
      'BATCH_TOO_LARGE',
    );
    assert.equal(error.status, 413);
  });

  const badEntries: [string, unknown][] = [
    ['null', null],
    ['a string', 'a'],
    ['an array', [{ key: 'a' }]],
    ['a missing key', { value: 1, version: VERSION }],
    ['an empty key', { key: '', value: 1, version: VERSION }],
    ['a numeric key', { key: 5, value: 1, version: VERSION }],
    ['a key with a lone surrogate', { key: '\uD800', value: 1, version: VERSION }],
    ['a key over 1024 bytes', { key: 'é'.repeat(513), value: 1, version: VERSION }],
    ['a missing version', { key: 'a', value: 1 }],
    ['an uppercase version', { key: 'a', value: 1, version: VERSION.toUpperCase() }],
    ['a zero version', { key: 'a', value: 1, version: `00000000000000-${NODE}` }],
    ['a version object', { key: 'a', value: 1, version: { timestamp: 1, nodeId: NODE } }],
    ['a missing value', { key: 'a', version: VERSION }],
    ['a value over the limit', { key: 'a', value: 'x'.repeat(VALUE_BYTES_MAX), version: VERSION }],
    ['a tombstone with a value', { key: 'a', deleted: true, value: 1, version: VERSION }],
    ['deleted as a string', { key: 'a', deleted: 'true', version: VERSION }],
    ['deleted as 1', { key: 'a', deleted: 1, value: 1, version: VERSION }],
  ];

  for (const [name, bad] of badEntries) {
    test(`one entry with ${name} rejects the whole batch with BAD_BATCH and its index`, () => {
      const entries = [liveEntry('first'), liveEntry('second'), bad, liveEntry('last')];
      const error = throwsPeerkv(
        () => validateReplicate({ entries }, VALUE_BYTES_MAX),
        'BAD_BATCH',
      );
      assert.equal(error.status, 400);
      assert.match(error.message, /^entry 2: /);
    });
  }

  test('a bad entry anywhere in a batch rejects the whole batch and names its index', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.nat(),
        fc.constantFrom(...badEntries.map(([, bad]) => bad)),
        (length, pick, bad) => {
          const index = pick % length;
          const entries: unknown[] = Array.from({ length }, (_, at) =>
            at % 3 === 0 ? { key: `k${at}`, deleted: true, version: VERSION } : liveEntry(`k${at}`),
          );
          entries[index] = bad;
          const error = throwsPeerkv(
            () => validateReplicate({ from: NODE, entries }, VALUE_BYTES_MAX),
            'BAD_BATCH',
          );
          assert.match(error.message, new RegExp(`^entry ${index}: `));
        },
      ),
      { numRuns: 300 },
    );
  });
});

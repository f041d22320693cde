// Checks that versions are totally ordered (timestamp, then node id), that their string form round-trips and sorts like the versions, and that parseVersion refuses every malformed string; by fixed cases and fast-check properties.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { TIMESTAMP_MAX } from '../../src/clock.ts';
import {
  compareVersions,
  formatVersion,
  NODE_ID_PATTERN,
  parseVersion,
  type Version,
} from '../../src/version.ts';

const hexDigit = fc.constantFrom(...'0123456789abcdef');
const nodeIdArb = fc.oneof(
  // A few fixed ids so that equal node ids (and ties on them) come up often.
  fc.constantFrom('0000000000000000', '00000000000000ff', 'a1b2c3d4e5f60718', 'ffffffffffffffff'),
  fc.string({ unit: hexDigit, minLength: 16, maxLength: 16 }),
);
const timestampArb = fc.oneof(
  fc.integer({ min: 1, max: 5 }),
  fc.integer({ min: 1, max: TIMESTAMP_MAX }),
  fc.constant(TIMESTAMP_MAX),
);
// Plain objects (fc.record builds null-prototype ones, which deepEqual tells apart).
const versionArb: fc.Arbitrary<Version> = fc
  .tuple(timestampArb, nodeIdArb)
  .map(([timestamp, nodeId]) => ({ timestamp, nodeId }));

const sign = (value: number): number => Math.sign(value);
const NODE = 'a1b2c3d4e5f60718';

describe('compareVersions', () => {
  test('orders by timestamp first, then by node id', () => {
    const older = { timestamp: 10, nodeId: 'ffffffffffffffff' };
    const newer = { timestamp: 11, nodeId: '0000000000000000' };
    assert.equal(compareVersions(older, newer), -1);
    assert.equal(compareVersions(newer, older), 1);
    const low = { timestamp: 10, nodeId: '0000000000000001' };
    const high = { timestamp: 10, nodeId: '0000000000000002' };
    assert.equal(compareVersions(low, high), -1);
    assert.equal(compareVersions(high, low), 1);
    assert.equal(compareVersions(low, { ...low }), 0);
  });

  test('is a total order (reflexive, antisymmetric, transitive, total)', () => {
    fc.assert(
      fc.property(versionArb, versionArb, versionArb, (a, b, c) => {
        assert.equal(compareVersions(a, a), 0);
        assert.equal(sign(compareVersions(a, b)) + sign(compareVersions(b, a)), 0, 'antisymmetric');
        const same = a.timestamp === b.timestamp && a.nodeId === b.nodeId;
        assert.equal(compareVersions(a, b) === 0, same, 'zero exactly when equal');
        if (compareVersions(a, b) <= 0 && compareVersions(b, c) <= 0) {
          assert.ok(compareVersions(a, c) <= 0, 'transitive');
        }
      }),
      { numRuns: 2_000 },
    );
  });

  test('sorting any list gives the same result from any starting order', () => {
    fc.assert(
      fc.property(fc.array(versionArb, { maxLength: 30 }), fc.nat(), (versions, rotate) => {
        const shifted = versions.map((_, index, all) => all[(index + rotate) % all.length]!);
        const sortedA = [...versions].sort(compareVersions).map(formatVersion);
        const sortedB = shifted.sort(compareVersions).map(formatVersion);
        assert.deepEqual(sortedA, sortedB);
      }),
    );
  });
});

describe('formatVersion and parseVersion', () => {
  test('formats as 14 hex digits, a dash and the node id', () => {
    assert.equal(formatVersion({ timestamp: 255, nodeId: NODE }), `000000000000ff-${NODE}`);
    assert.equal(
      formatVersion({ timestamp: Number.MAX_SAFE_INTEGER, nodeId: NODE }),
      `1fffffffffffff-${NODE}`,
    );
  });

  test('round-trips every valid version', () => {
    fc.assert(
      fc.property(versionArb, (version) => {
        const text = formatVersion(version);
        assert.equal(text.length, 31);
        assert.deepEqual(parseVersion(text), version);
        assert.equal(formatVersion(parseVersion(text)!), text);
      }),
      { numRuns: 2_000 },
    );
  });

  test('string order equals version order', () => {
    fc.assert(
      fc.property(versionArb, versionArb, (a, b) => {
        const textA = formatVersion(a);
        const textB = formatVersion(b);
        const stringOrder = textA < textB ? -1 : textA > textB ? 1 : 0;
        assert.equal(stringOrder, compareVersions(a, b), `${textA} vs ${textB}`);
      }),
      { numRuns: 5_000 },
    );
  });

  test('node ids in valid versions match NODE_ID_PATTERN', () => {
    assert.ok(NODE_ID_PATTERN.test(parseVersion(`00000000000001-${NODE}`)!.nodeId));
  });

  const malformed: [string, unknown][] = [
    ['empty string', ''],
    ['13-digit timestamp', `0000000000001-${NODE}`],
    ['15-digit timestamp', `000000000000001-${NODE}`],
    ['15-digit node id', '00000000000001-a1b2c3d4e5f6071'],
    ['17-digit node id', '00000000000001-a1b2c3d4e5f607180'],
    ['uppercase timestamp', `0000000000000A-${NODE}`],
    ['uppercase node id', '00000000000001-A1B2C3D4E5F60718'],
    ['missing dash', `00000000000001${NODE}`],
    ['other separator', `00000000000001_${NODE}`],
    ['non-hex digit', `0000000000000g-${NODE}`],
    ['leading space', ` 00000000000001-${NODE}`],
    ['trailing newline', `00000000000001-${NODE}\n`],
    ['sign in timestamp', `-0000000000001-${NODE}`],
    ['zero timestamp', `00000000000000-${NODE}`],
    ['timestamp 2^53 (> MAX_SAFE_INTEGER)', `20000000000000-${NODE}`],
    ['largest 14-digit timestamp', `ffffffffffffff-${NODE}`],
    ['number', 1],
    ['null', null],
    ['undefined', undefined],
    ['object', { timestamp: 1, nodeId: NODE }],
    ['array', [`00000000000001-${NODE}`]],
  ];
  for (const [name, input] of malformed) {
    test(`parseVersion rejects ${name}`, () => {
      assert.equal(parseVersion(input), undefined);
    });
  }

  test('parseVersion accepts the smallest and largest timestamps', () => {
    assert.deepEqual(parseVersion(`00000000000001-${NODE}`), { timestamp: 1, nodeId: NODE });
    assert.deepEqual(parseVersion(`1fffffffffffff-${NODE}`), {
      timestamp: Number.MAX_SAFE_INTEGER,
      nodeId: NODE,
    });
  });

  test('parseVersion never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => {
        const parsed = parseVersion(text);
        if (parsed) assert.equal(formatVersion(parsed), text);
      }),
      { numRuns: 2_000 },
    );
  });
});

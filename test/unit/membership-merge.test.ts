// Checks the member list's merge (src/membership/membership.ts) as properties over random lists:
// idempotent, commutative and associative, so nodes exchanging lists in any order end equal; the
// higher version wins per node id; and bad lists from a peer are refused whole.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HybridClock, LOGICAL_PER_MS } from '../../src/clock.ts';
import { PeerkvError } from '../../src/errors.ts';
import { Membership, memberVersion, parseMemberExchange } from '../../src/membership/membership.ts';
import type { MemberRow } from '../../src/store/types.ts';
import { formatVersion } from '../../src/version.ts';

const IDS = ['00000000000000a1', '00000000000000a2', '00000000000000a3', '00000000000000a4'];

function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function randomRows(random: () => number): MemberRow[] {
  return IDS.filter(() => random() < 0.7).map((nodeId) => ({
    nodeId,
    url: `http://127.0.0.1:${8000 + Math.floor(random() * 4)}`,
    state: random() < 0.5 ? 'member' : 'removed',
    version: `${Math.floor(random() * 50 + 1)
      .toString(16)
      .padStart(14, '0')}-${IDS[Math.floor(random() * IDS.length)]}`,
  }));
}

function membership(rows: readonly MemberRow[] = []): Membership {
  const saved: MemberRow[] = [...rows];
  return new Membership({
    store: { members: () => saved, saveMembers: (more) => void saved.push(...more) },
    selfNodeId: '00000000000000ff',
    newVersion: () => '00000000000099-00000000000000ff',
  });
}

/** The list after merging `lists` into an empty one in this order. */
function mergedInOrder(lists: readonly MemberRow[][]): MemberRow[] {
  const m = membership();
  for (const list of lists) m.merge(list);
  return m.rows();
}

describe('member list merge', () => {
  test('idempotent, commutative and associative over 2,000 random triples', () => {
    const random = rng(42);
    for (let round = 0; round < 2_000; round += 1) {
      const [x, y, z] = [randomRows(random), randomRows(random), randomRows(random)];
      const reference = mergedInOrder([x, y, z]);
      assert.deepEqual(mergedInOrder([z, y, x]), reference, 'order does not matter');
      assert.deepEqual(mergedInOrder([y, x, z, x, y]), reference, 'repeats change nothing');
      const yz = mergedInOrder([y, z]);
      assert.deepEqual(mergedInOrder([x, yz]), reference, 'grouping does not matter');
    }
  });

  test('the higher version wins per node id, and a merge reports whether it changed anything', () => {
    const m = membership();
    const row = (state: MemberRow['state'], timestamp: number): MemberRow => ({
      nodeId: IDS[0]!,
      url: 'http://127.0.0.1:8004',
      state,
      version: `${timestamp.toString(16).padStart(14, '0')}-${IDS[1]}`,
    });
    assert.equal(m.merge([row('member', 5)]), true);
    assert.equal(m.merge([row('removed', 4)]), false, 'older: ignored');
    assert.equal(m.isRemoved(IDS[0]!), false);
    assert.equal(m.merge([row('removed', 6)]), true);
    assert.equal(m.isRemoved(IDS[0]!), true);
    assert.equal(m.merge([row('removed', 6)]), false, 'the same row again: no change');
  });

  test('a node cannot remove itself; removing twice is NOT_FOUND', () => {
    const m = membership();
    assert.throws(
      () => m.remove('00000000000000ff', 'http://127.0.0.1:1'),
      (error: unknown) => error instanceof PeerkvError && error.code === 'CANNOT_REMOVE_SELF',
    );
    m.remove(IDS[0]!, 'http://127.0.0.1:8001');
    assert.throws(
      () => m.remove(IDS[0]!, 'http://127.0.0.1:8001'),
      (error: unknown) => error instanceof PeerkvError && error.code === 'NOT_FOUND',
    );
  });

  test('an add back made on a node whose clock is behind the removal wins over it (sim seed 12)', () => {
    // The removal was made on a node whose clock runs 20 s ahead of the adder's.
    const wallMs = Date.UTC(2026, 0, 1);
    const aheadTimestamp = (wallMs + 20_000) * LOGICAL_PER_MS;
    const removal: MemberRow = {
      nodeId: IDS[0]!,
      url: 'http://127.0.0.1:8002',
      state: 'removed',
      version: formatVersion({ timestamp: aheadTimestamp, nodeId: IDS[1]! }),
    };
    const clock = new HybridClock(
      () => wallMs,
      0,
      () => 1_000,
    );
    const saved: MemberRow[] = [];
    const adder = new Membership({
      store: { members: () => saved, saveMembers: (more) => void saved.push(...more) },
      selfNodeId: IDS[2]!,
      newVersion: (above) => memberVersion(clock, IDS[2]!, above),
    });
    adder.merge([removal]);
    assert.equal(adder.add(IDS[0]!, 'http://127.0.0.1:8002'), true);
    const other = membership([removal]);
    other.merge(adder.rows());
    assert.equal(other.isRemoved(IDS[0]!), false, 'the add reaches a node holding the removal');
    assert.ok(clock.last < aheadTimestamp, 'the clock was not dragged to the removal');
  });

  test('a bad list from a peer is refused whole', () => {
    const good = {
      nodeId: IDS[0],
      url: 'http://127.0.0.1:1',
      state: 'member',
      version: `${'1'.padStart(14, '0')}-${IDS[1]}`,
    };
    for (const body of [
      null,
      { members: {} },
      { members: [{ ...good, nodeId: 'x' }] },
      { members: [{ ...good, url: 'file:///etc/passwd' }] },
      { members: [{ ...good, state: 'gone' }] },
      { members: [{ ...good, version: '1-2' }] },
      { members: [good], peers: 'x' },
      { members: [good], peers: [{ nodeId: IDS[0], url: 'http://127.0.0.1:1/p' }] },
    ]) {
      assert.throws(
        () => parseMemberExchange(body),
        (error: unknown) => error instanceof PeerkvError && error.code === 'BAD_REQUEST',
        JSON.stringify(body),
      );
    }
    assert.equal(parseMemberExchange({ members: [good] }).members.length, 1);
  });
});

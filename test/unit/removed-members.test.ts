// Checks how a removed member's writes are closed before tombstone removal goes on
// (src/tombstones/removed-members.ts): which deliveries of a removed member's writes are
// still taken (from members older than the removal, never from it or a later joiner, none
// once released), that the store refuses the others as `removed-member`, that a release is
// persisted across a reopen, the X-Peerkv-Covered header, and the collector's rule: released
// only once every member covered every other with a whole resync begun after it knew.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { LOGICAL_PER_MS } from '../../src/clock.ts';
import type { MemberRow } from '../../src/store/types.ts';
import { type CollectorPeer, TombstoneCollector } from '../../src/tombstones/collector.ts';
import { RemovedMembers } from '../../src/tombstones/removed-members.ts';
import { formatCovered, parseCovered } from '../../src/tombstones/stability.ts';
import { formatVersion } from '../../src/version.ts';
import { applyRemote, openStore, TempDirs } from './store-fixture.ts';

const dirs = new TempDirs();
after(() => dirs.remove());

const B = '000000000000000b';
const C = '000000000000000c';
const X = '00000000000000ee';
const LATE = '00000000000000ff';
const version = (ms: number, nodeId: string) =>
  formatVersion({ timestamp: ms * LOGICAL_PER_MS, nodeId });

function rowsWith(extra: MemberRow[]) {
  let rows: MemberRow[] = extra;
  let revision = 0;
  return {
    rows: () => rows,
    revision: () => revision,
    set(next: MemberRow[]) {
      rows = next;
      revision += 1;
    },
  };
}

describe('removed members', () => {
  test('a removed member’s writes come only from members older than its removal', () => {
    const store = openStore(dirs.newDir());
    const list = rowsWith([]);
    const removed = new RemovedMembers({ ...list, store, selfNodeId: store.nodeId });
    assert.equal(removed.admits(X, X), true, 'nothing is removed');
    assert.equal(removed.pauseReason(), null);
    list.set([
      { nodeId: X, url: 'http://127.0.0.1:1', state: 'removed', version: version(2_000, B) },
      { nodeId: C, url: 'http://127.0.0.1:2', state: 'member', version: version(1_000, B) },
      { nodeId: LATE, url: 'http://127.0.0.1:3', state: 'member', version: version(3_000, B) },
    ]);
    assert.equal(removed.admits(X, X), false, 'not from the removed node itself');
    assert.equal(removed.admits(X, LATE), false, 'not from a node that joined after');
    assert.equal(removed.admits(X, C), true, 'from a member that joined before');
    assert.equal(removed.admits(X, B), true, 'from a member started with --peers');
    assert.equal(removed.admits(B, LATE), true, 'writes of members pass from anyone');
    assert.match(removed.pauseReason() ?? '', /00000000000000ee/);
    const [removal] = removed.removals();
    removed.release(removal!);
    assert.equal(removed.pauseReason(), null);
    assert.equal(removed.admits(X, C), false, 'released: none of its writes is taken any more');
    store.close();
  });

  test('the store refuses what is not admitted, and a release survives a reopen', () => {
    const dir = dirs.newDir();
    let store = openStore(dir);
    store.admits = (origin) => origin !== X;
    const ts = Date.now() * LOGICAL_PER_MS;
    const [refused, taken] = applyRemote(store, [
      { key: 'x', valueJson: '1', version: { timestamp: ts, nodeId: X } },
      { key: 'b', valueJson: '1', version: { timestamp: ts, nodeId: B } },
    ]);
    assert.equal(refused?.refused, 'removed-member');
    assert.equal(refused?.applied, false);
    assert.equal(store.get('x'), undefined);
    assert.equal(taken?.applied, true);
    store.releaseRemoval(X, version(2_000, B));
    store.close();
    store = openStore(dir);
    assert.deepEqual([...store.releasedRemovals()], [[X, version(2_000, B)]]);
    store.close();
  });

  test('X-Peerkv-Covered round-trips, and a malformed one covers nothing', () => {
    const key = `${X}@${version(2_000, B)}`;
    const covered = new Map([[key, new Set([B, C])]]);
    assert.deepEqual(parseCovered(formatCovered(covered)), covered);
    assert.deepEqual(parseCovered(`${key}=${B}.nothex`), new Map());
    assert.deepEqual(parseCovered('garbage=1'), new Map());
    assert.deepEqual(parseCovered(undefined), new Map());
  });
});

describe('the collector closes a removal', () => {
  test('only once every member covered every other, after it knew', () => {
    const store = openStore(dirs.newDir());
    let now = 10_000;
    const list = rowsWith([
      { nodeId: X, url: 'http://127.0.0.1:1', state: 'removed', version: version(2_000, B) },
    ]);
    const removed = new RemovedMembers({ ...list, store, selfNodeId: store.nodeId });
    const key = `${X}@${version(2_000, B)}`;
    const peer = (
      nodeId: string,
    ): CollectorPeer & { wholeResync: unknown; ackReport: unknown } => ({
      nodeId,
      state: 'up',
      sender: { cursor: 0, level: true, refusedLowest: Number.POSITIVE_INFINITY },
      ackReport: null,
      wholeResync: null,
    });
    const peers = [peer(B), peer(C)] as {
      -readonly [K in keyof CollectorPeer]: CollectorPeer[K];
    }[];
    const asked: string[] = [];
    const collector = new TombstoneCollector({
      store,
      peers: () => peers,
      graceMs: 1_000,
      intervalMs: 1_000,
      wallMs: () => Date.now(),
      log: pino({ level: 'silent' }),
      removed,
      wantResync: (p) => asked.push(p.nodeId!),
      runtime: {
        monoMs: () => now,
        setTimeout: () => 0 as never,
        clearTimeout: () => {},
        setInterval: () => 0 as never,
        clearInterval: () => {},
        setImmediate: () => 0 as never,
      } as never,
    });
    collector.tick();
    assert.deepEqual(asked.sort(), [B, C], 'a resync is asked of every member not covered');
    assert.deepEqual([...(collector.report().covered?.get(key) ?? [])], []);
    // A resync that began before this node knew does not count.
    peers[0]!.wholeResync = { startedMonoMs: 9_000, nodeId: B };
    peers[1]!.wholeResync = { startedMonoMs: 10_500, nodeId: C };
    now = 11_000;
    collector.tick();
    assert.deepEqual([...(collector.report().covered?.get(key) ?? [])], [C]);
    peers[0]!.wholeResync = { startedMonoMs: 10_600, nodeId: B };
    // Both peers report coverage, but B has not covered C yet.
    peers[0]!.ackReport = {
      horizon: 0,
      acked: new Map(),
      covered: new Map([[key, new Set([store.nodeId])]]),
    };
    peers[1]!.ackReport = {
      horizon: 0,
      acked: new Map(),
      covered: new Map([[key, new Set([store.nodeId, B])]]),
    };
    collector.tick();
    assert.deepEqual([...(collector.report().covered?.get(key) ?? [])].sort(), [B, C]);
    assert.notEqual(removed.pauseReason(), null, 'B has not covered C');
    peers[0]!.ackReport = {
      horizon: 0,
      acked: new Map(),
      covered: new Map([[key, new Set([store.nodeId, C])]]),
    };
    collector.tick();
    assert.equal(removed.pauseReason(), null, 'released');
    assert.equal(store.releasedRemovals().get(X), version(2_000, B));
    collector.stop();
    store.close();
  });
});

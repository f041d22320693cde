// Checks how many yields in a row a wanted resync counts toward resyncYieldsMax: a peer busy with
// a resync that moved entries since our last look is waited out (the count starts again), one stuck saying it
// is busy (nothing moved, or a version that does not say) is counted until we run anyway; and
// that a digest answer's resyncMoved is read only as a whole number.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PeerSender } from '../../src/replication/peer-sender.ts';
import type { PeerTransport } from '../../src/replication/peer-transport.ts';
import { GROUPS } from '../../src/store/digest.ts';
import { deferralsAfter, newPeer } from '../../src/supervisor.ts';
import type { ResyncReport } from '../../src/sync/resync.ts';
import { parseDigest } from '../../src/sync/sync-wire.ts';
import { NOTHING_MOVED } from '../helpers/resync-reports.ts';

function deferred(peerResyncMoved?: number): ResyncReport {
  return {
    result: 'deferred',
    ...NOTHING_MOVED,
    ...(peerResyncMoved === undefined ? {} : { peerResyncMoved }),
  };
}

function peerAt(deferrals: number, busyPeerMoved: number | undefined) {
  const peer = newPeer('http://127.0.0.1:1', {} as PeerTransport, {} as PeerSender);
  peer.resyncDeferrals = deferrals;
  peer.busyPeerMoved = busyPeerMoved;
  return peer;
}

describe('yields to a busy peer', () => {
  test('a resync that ran resets the count', () => {
    assert.equal(deferralsAfter(peerAt(4, 10), { result: 'equal', ...NOTHING_MOVED }), 0);
    assert.equal(deferralsAfter(peerAt(4, 10), { result: 'synced', ...NOTHING_MOVED }), 0);
  });

  test('the first yield counts: nothing is known of the peer progress yet', () => {
    assert.equal(deferralsAfter(peerAt(0, undefined), deferred(500)), 1);
  });

  test('a peer that moved entries since the last yield is waited out: the count starts again', () => {
    assert.equal(deferralsAfter(peerAt(1, 500), deferred(501)), 0);
    assert.equal(deferralsAfter(peerAt(4, 500), deferred(90_000)), 0);
  });

  test('a peer stuck busy, or one that does not say, is counted', () => {
    assert.equal(deferralsAfter(peerAt(1, 500), deferred(500)), 2);
    assert.equal(deferralsAfter(peerAt(2, 500), deferred()), 3);
    assert.equal(deferralsAfter(peerAt(2, undefined), deferred(700)), 3);
  });
});

describe("a digest answer's resyncMoved", () => {
  const answer = (extra: Record<string, unknown>) => ({
    nodeId: '00000000000000aa',
    root: '0'.repeat(64),
    groups: Array.from({ length: GROUPS }, () => '0'.repeat(16)),
    backlog: 0,
    resyncing: true,
    ...extra,
  });

  test('is read when a whole number, absent from an older version', () => {
    assert.equal(parseDigest(answer({ resyncMoved: 1234 })).resyncMoved, 1234);
    assert.equal(parseDigest(answer({})).resyncMoved, undefined);
  });

  test('anything else is a bad answer', () => {
    for (const resyncMoved of [-1, 1.5, '12', null, Number.MAX_SAFE_INTEGER + 2]) {
      assert.throws(() => parseDigest(answer({ resyncMoved })), /bad resyncMoved/);
    }
  });
});

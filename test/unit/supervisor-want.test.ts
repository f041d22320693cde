// A resync retry still pending when its peer comes back waits two ping periods like a new one,
// so the peer that just started (or was wiped) resyncs first and is filled once. Before the fix
// the retry of a resync that failed as the peer went down ran the moment the peer was up again,
// before the peer's own resync began: it pushed a wiped peer the whole store (seen as a flaky
// test/integration/replication-rebuild-once.test.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import type { PeerSender } from '../../src/replication/peer-sender.ts';
import type { PeerTransport } from '../../src/replication/peer-transport.ts';
import type { Runtime } from '../../src/runtime.ts';
import { newPeer, Supervisor } from '../../src/supervisor.ts';

const PING_MS = 100;

/** A supervisor long past its start-up window, on a clock the test moves; resyncs fail. */
function supervisorAt() {
  const clock = { now: 0 };
  const runtime: Runtime = {
    monoMs: () => clock.now,
    setTimeout: () => ({}),
    clearTimeout: () => {},
    setInterval: () => ({}),
    clearInterval: () => {},
    setImmediate: (callback) => callback(),
    sleep: async () => {},
  };
  const sender = { jumps: 0, refusals: 0, stop: () => {} } as unknown as PeerSender;
  const peer = newPeer('http://127.0.0.1:1', {} as PeerTransport, sender);
  peer.state = 'up';
  peer.nodeId = 'b0b0b0b0b0b0b0b0';
  const started: number[] = [];
  const supervisor = new Supervisor({
    selfNodeId: 'a0a0a0a0a0a0a0a0',
    selfInstanceId: 'i',
    peers: [peer],
    pingIntervalMs: PING_MS,
    antiEntropyIntervalMs: 60_000,
    clockSkewMsMax: 1_000,
    clockAheadMs: () => 0,
    valueBytesMax: 1024,
    wallMs: () => 1_800_000_000_000 + clock.now,
    log: pino({ level: 'silent' }),
    runResync: async () => {
      started.push(clock.now);
      throw new Error('POST /replicate failed: ECONNRESET');
    },
    random: () => 0,
    startupWindowMs: 3 * PING_MS,
    runtime,
  });
  clock.now = 10_000;
  return { clock, peer, supervisor, started };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('a wanted resync when the peer comes back', () => {
  for (const trigger of ['new-peer', 'recovered']) {
    test(`a pending retry waits two ping periods after the peer is back (${trigger})`, async () => {
      const { clock, peer, supervisor, started } = supervisorAt();
      supervisor.wantResync(peer, 'anti-entropy');
      assert.deepEqual(started, [10_000], 'anti-entropy runs at once');
      await settle();
      assert.equal(peer.resyncWanted, 'anti-entropy', 'the failed resync is wanted again');
      // The peer was down and is back (as itself, or wiped with a new id) half a period later.
      clock.now = 10_050;
      supervisor.wantResync(peer, trigger);
      // Later pokes (the next rounds' wants) start it once it may run.
      clock.now = 10_150;
      supervisor.wantResync(peer, 'anti-entropy');
      assert.deepEqual(started, [10_000], 'not one ping period after it is back');
      clock.now = 10_250;
      supervisor.wantResync(peer, 'anti-entropy');
      assert.deepEqual(started, [10_000, 10_250], 'two ping periods after it is back');
    });
  }

  test('a pending retry is not held back by a trigger that is no comeback', async () => {
    const { clock, peer, supervisor, started } = supervisorAt();
    supervisor.wantResync(peer, 'anti-entropy');
    await settle();
    clock.now = 10_100;
    supervisor.wantResync(peer, 'refused');
    assert.deepEqual(started, [10_000, 10_100], 'the retry runs one ping period after failing');
  });
});

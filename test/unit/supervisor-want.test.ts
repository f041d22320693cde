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
import { NOTHING_MOVED } from '../helpers/resync-reports.ts';

const PING_MS = 100;
/** A call to a peer that hangs until the timeout. */
const HANG_MS = 5_000;

/** `defer-N`: the peer says it is busy resyncing and its resyncs have moved N entries. */
type Outcome = 'fail' | 'hang-and-fail' | 'succeed' | `defer-${number}`;

/**
 * A supervisor long past its start-up window, on a clock the test moves; resyncs fail at once
 * unless `outcomes` (one per resync, in order) says otherwise: a hanging one takes HANG_MS.
 * `yielding` records, per resync, whether it was allowed to yield to a busy peer.
 */
function supervisorAt(outcomes: Outcome[] = [], busyPeerStallMs?: number) {
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
  const sender = {
    jumps: 0,
    refusals: 0,
    stop: () => {},
    markLevel: () => {},
    settleRefusals: () => {},
  } as unknown as PeerSender;
  const peer = newPeer('http://127.0.0.1:1', {} as PeerTransport, sender);
  peer.state = 'up';
  peer.nodeId = 'b0b0b0b0b0b0b0b0';
  const started: number[] = [];
  const yielding: boolean[] = [];
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
    runResync: async (_peer, yieldToBusyPeer) => {
      started.push(clock.now);
      yielding.push(yieldToBusyPeer);
      const outcome = outcomes.shift() ?? 'fail';
      if (outcome === 'succeed') return { result: 'equal', ...NOTHING_MOVED };
      if (outcome.startsWith('defer-') && yieldToBusyPeer) {
        return { result: 'deferred', ...NOTHING_MOVED, peerResyncMoved: Number(outcome.slice(6)) };
      }
      if (outcome.startsWith('defer-')) return { result: 'synced', ...NOTHING_MOVED };
      if (outcome === 'hang-and-fail') clock.now += HANG_MS;
      throw new Error('POST /replicate failed: ECONNRESET');
    },
    random: () => 0,
    startupWindowMs: 3 * PING_MS,
    ...(busyPeerStallMs === undefined ? {} : { busyPeerStallMs }),
    runtime,
  });
  clock.now = 10_000;
  return { clock, peer, supervisor, started, yielding };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Pokes the supervisor (as ping rounds do) every ping period until `untilMs`. */
async function pokeUntil(context: ReturnType<typeof supervisorAt>, untilMs: number) {
  while (context.clock.now < untilMs) {
    context.clock.now += PING_MS;
    context.supervisor.wantResync(context.peer, 'anti-entropy');
    await settle();
  }
}

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

describe('a resync that keeps failing with a peer that still answers pings', () => {
  // A want that began as a comeback is retried as that want, and must double all the same.
  for (const trigger of ['anti-entropy', 'new-peer']) {
    test(`waits at least as long as the failed attempt took, doubling with each failure (${trigger})`, async () => {
      const context = supervisorAt(['hang-and-fail', 'hang-and-fail', 'hang-and-fail']);
      context.supervisor.wantResync(context.peer, trigger);
      await settle();
      await pokeUntil(context, 70_000);
      const [first, second, third, fourth] = context.started as [number, number, number, number];
      assert.ok(first <= 10_000 + 2 * PING_MS, `${context.started}`);
      // Each attempt hangs 5 s; the next waits >= 5 s after it, then 10 s, then 20 s.
      assert.ok(second - (first + HANG_MS) >= HANG_MS, `${context.started}`);
      assert.ok(third - (second + HANG_MS) >= 2 * HANG_MS, `${context.started}`);
      assert.ok(fourth - (third + HANG_MS) >= 4 * HANG_MS, `${context.started}`);
      assert.ok(fourth - (third + HANG_MS) <= 4 * HANG_MS + PING_MS, `${context.started}`);
    });
  }

  test('the wait is bounded, and a resync that runs starts the count again', async () => {
    const outcomes: Outcome[] = [...Array(8).fill('hang-and-fail'), 'succeed', 'fail'];
    const context = supervisorAt(outcomes);
    context.supervisor.wantResync(context.peer, 'anti-entropy');
    await settle();
    await pokeUntil(context, 400_000);
    const gaps = context.started.slice(1).map((at, i) => at - (context.started[i] as number));
    assert.ok(gaps.length >= 10, `${context.started}`);
    // Past a few doublings the wait stops at resyncRetryMsMax (30 s) after the 5 s attempt.
    for (const gap of gaps.slice(0, 8)) assert.ok(gap <= HANG_MS + 30_000 + PING_MS, `${gaps}`);
    assert.ok((gaps[6] as number) >= HANG_MS + 30_000, `${gaps}`);
    // After the success (the 9th) the next failure (the 10th, a quick one) retries one ping period later.
    assert.ok((gaps[9] as number) <= 2 * PING_MS, `${gaps}`);
  });

  test('a peer that comes back is retried like a new one, whatever failed before', async () => {
    const context = supervisorAt(Array(5).fill('hang-and-fail'));
    context.supervisor.wantResync(context.peer, 'anti-entropy');
    await settle();
    await pokeUntil(context, 90_000);
    const before = context.started.length;
    // Backed off for tens of seconds by now; the peer restarts.
    context.supervisor.wantResync(context.peer, 'recovered');
    const backAt = context.clock.now;
    await pokeUntil(context, backAt + 3 * PING_MS);
    assert.equal(context.started.length, before + 1, `${context.started}`);
    assert.equal(context.started.at(-1), backAt + 2 * PING_MS, 'two ping periods after it is back');
  });
});

describe('a wanted resync and a peer busy resyncing itself', () => {
  test('a peer that comes back is yielded to afresh, whatever yields its last life used up', async () => {
    // Five yields to a peer that moved nothing, a resync that ran and failed as the peer was
    // killed, then the peer back wiped: it rebuilds itself, and we must not push it the store.
    const outcomes: Outcome[] = [...Array(5).fill('defer-7'), 'fail', 'defer-0'];
    const context = supervisorAt(outcomes);
    context.supervisor.wantResync(context.peer, 'anti-entropy');
    await settle();
    while (context.started.length < 6) await pokeUntil(context, context.clock.now + PING_MS);
    await settle();
    assert.deepEqual(context.yielding, [true, true, true, true, true, false]);
    context.supervisor.wantResync(context.peer, 'new-peer');
    await pokeUntil(context, context.clock.now + 3 * PING_MS);
    assert.ok(context.started.length >= 7, `${context.started}`);
    assert.equal(context.yielding[6], true, 'the wiped peer is yielded to');
  });

  test('a busy peer that keeps moving entries is yielded to however long it takes', async () => {
    // Every other look finds it has moved nothing since the last (a slow batch).
    const outcomes = Array.from({ length: 30 }, (_, i): Outcome => `defer-${Math.floor(i / 2)}`);
    const context = supervisorAt(outcomes);
    context.supervisor.wantResync(context.peer, 'anti-entropy');
    await settle();
    await pokeUntil(context, 10_000 + 30 * 2 * PING_MS);
    assert.ok(context.yielding.length >= 30, `${context.started}`);
    assert.ok(context.yielding.slice(0, 30).every(Boolean), `${context.yielding}`);
  });

  test('a busy peer that moves nothing is yielded to for busyPeerStallMs, then we run', async () => {
    const STALL_MS = 2_000;
    const context = supervisorAt(Array(40).fill('defer-7'), STALL_MS);
    context.supervisor.wantResync(context.peer, 'anti-entropy');
    await settle();
    await pokeUntil(context, 10_000 + STALL_MS + 5 * PING_MS);
    const first = context.yielding.indexOf(false);
    assert.ok(first > 5, `more than five looks: ${context.yielding}`);
    const ranAt = context.started[first] as number;
    assert.ok(ranAt >= 10_000 + STALL_MS, `${ranAt}`);
    assert.ok(ranAt <= 10_000 + STALL_MS + 2 * PING_MS, `${ranAt}`);
  });

  test('without busyPeerStallMs, the sixth look at a peer that moves nothing runs', async () => {
    const context = supervisorAt(Array(10).fill('defer-7'));
    context.supervisor.wantResync(context.peer, 'anti-entropy');
    await settle();
    await pokeUntil(context, 10_000 + 10 * PING_MS);
    assert.deepEqual(context.yielding.slice(0, 6), [true, true, true, true, true, false]);
  });
});

// Goal: bringing back a node that missed 100 changes to a 10,000-key store moves on the order of
// 100 entries, not 10,000; method: load through PUT /kv, kill C, change 100 keys on A and B,
// restart C, and add up the entries moved toward and from C from every node's /cluster counters.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Cluster, type NodeProcess, useCluster } from '../helpers/node-process.ts';
import {
  assertConverged,
  deleteKey,
  Ledger,
  PINGFREQ_SECONDS,
  peerView,
  putKey,
  runBounded,
  TIMEOUT_SECONDS,
  waitLinkIdle,
  waitSameHash,
  withLogsOnFailure,
} from './replication-support.ts';

const KEYS = 10_000;
const LOAD_IN_FLIGHT = 100;
/** Changes made while C is down: per survivor, puts then deletes. */
const PUTS_EACH = 35;
const DELETES_EACH = 15;
const CHANGES = 2 * (PUTS_EACH + DELETES_EACH);
/** "On the order of the difference": ten times it, and far below the store size. */
const MOVED_MAX = 10 * CHANGES;
const LOAD_SETTLE_MS = 30_000;
const SETTLE_MS = 10_000;

let cluster: Cluster;
useCluster({ nodes: 3, pingfreq: PINGFREQ_SECONDS, timeout: TIMEOUT_SECONDS }, (started) => {
  cluster = started;
});

/** Everything the counters of `from` say moved between it and `to` (replication + resync). */
async function movedBetween(from: NodeProcess, to: NodeProcess) {
  const view = await peerView(from.url, to.url);
  return {
    replicated: view.replication.entriesSent,
    replicatedBytes: view.replication.bytesSent,
    resyncSent: view.resyncTotals.entriesSent,
    resyncReceived: view.resyncTotals.entriesReceived,
    resyncBytes: view.resyncTotals.bytesSent + view.resyncTotals.bytesReceived,
  };
}

type Moved = Awaited<ReturnType<typeof movedBetween>>;

function minus(now: Moved, before: Moved): Moved {
  return {
    replicated: now.replicated - before.replicated,
    replicatedBytes: now.replicatedBytes - before.replicatedBytes,
    resyncSent: now.resyncSent - before.resyncSent,
    resyncReceived: now.resyncReceived - before.resyncReceived,
    resyncBytes: now.resyncBytes - before.resyncBytes,
  };
}

const entries = (moved: Moved): number =>
  moved.replicated + moved.resyncSent + moved.resyncReceived;

test('catching up 100 missed changes of 10,000 keys moves about 100 entries', async (t) => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b, c] = [cluster.node(0), cluster.node(1), cluster.node(2)];
    const ledger = new Ledger();
    const keys = Array.from({ length: KEYS }, (_, j) => `key/${String(j).padStart(5, '0')}`);
    const loadStartMs = performance.now();
    // Keep-alive for the load only: A is never restarted in this test, so no stale sockets.
    await runBounded(keys, LOAD_IN_FLIGHT, (key, j) =>
      putKey(a.url, key, { j }, ledger, { keepAlive: true }).then(),
    );
    await waitSameHash(cluster.nodes, LOAD_SETTLE_MS, 'every node holds the 10,000 keys');
    const loadMs = Math.round(performance.now() - loadStartMs);

    c.kill('SIGKILL');
    await c.waitExit();
    const change = (node: NodeProcess, offset: number) =>
      runBounded(keys.slice(offset, offset + PUTS_EACH + DELETES_EACH), 10, (key, j) =>
        j < PUTS_EACH
          ? putKey(node.url, key, 'changed', ledger).then()
          : deleteKey(node.url, key, ledger).then(),
      );
    await Promise.all([change(a, 0), change(b, 5_000)]);
    await waitSameHash([a, b], SETTLE_MS, 'A and B agree before C is back');
    const before = {
      aToC: await movedBetween(a, c),
      bToC: await movedBetween(b, c),
    };

    await c.start();
    await assertConverged(cluster.nodes, ledger, SETTLE_MS);
    // Counters are bumped on acknowledgement and at the end of a resync: let both finish.
    for (const [from, to] of [
      [a, c],
      [b, c],
      [c, a],
      [c, b],
    ] as const) {
      await waitLinkIdle(from.url, to.url, SETTLE_MS);
    }
    const moved = {
      aToC: minus(await movedBetween(a, c), before.aToC),
      bToC: minus(await movedBetween(b, c), before.bToC),
      // C restarted, so its counters start at zero: everything in them is this catch-up.
      cFromA: await movedBetween(c, a),
      cFromB: await movedBetween(c, b),
    };
    const total = Object.values(moved).reduce((sum, m) => sum + entries(m), 0);
    const bytes = Object.values(moved).reduce(
      (sum, m) => sum + m.replicatedBytes + m.resyncBytes,
      0,
    );
    t.diagnostic(
      `load: ${KEYS} PUTs (${LOAD_IN_FLIGHT} in flight) and 3 equal hashes in ${loadMs} ms`,
    );
    for (const [link, m] of Object.entries(moved)) t.diagnostic(`${link}: ${JSON.stringify(m)}`);
    t.diagnostic(
      `${CHANGES} changes missed by C; entries moved toward/from C: ${total} (bound ${MOVED_MAX}), ` +
        `bytes ${bytes}`,
    );
    // Each missed change reaches C by one of these paths, so fewer means the counters lie.
    assert.ok(total >= CHANGES, `only ${total} entries counted for ${CHANGES} missed changes`);
    assert.ok(total <= MOVED_MAX, `${total} entries moved for ${CHANGES} changes of ${KEYS} keys`);
  });
});

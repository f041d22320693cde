// Goal: writes taken by a node the moment it is back from a SIGKILL (before its resync is done),
// while the others keep writing too, are never lost in either direction; method: ledger of every
// acknowledged write (keys written on both sides included), full listings and hashes compared.
import { test } from 'node:test';
import { type Cluster, useCluster } from '../helpers/node-process.ts';
import {
  assertConverged,
  clusterView,
  deleteKey,
  Ledger,
  PINGFREQ_SECONDS,
  putKey,
  runBounded,
  TIMEOUT_SECONDS,
  waitSameHash,
  withLogsOnFailure,
} from './replication-support.ts';

const KEYS = 40;
const IN_FLIGHT = 8;
const SETTLE_MS = 10_000;

let cluster: Cluster;
useCluster({ nodes: 3, pingfreq: PINGFREQ_SECONDS, timeout: TIMEOUT_SECONDS }, (started) => {
  cluster = started;
});

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from }, (_, index) => from + index);

test('writes to a just-restarted node and to its peers all survive', async (t) => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b, c] = [cluster.node(0), cluster.node(1), cluster.node(2)];
    const ledger = new Ledger();
    await runBounded(range(0, KEYS), IN_FLIGHT, (j) =>
      putKey(a.url, `k${j}`, 'seed', ledger).then(),
    );
    await waitSameHash(cluster.nodes, SETTLE_MS, 'the cluster settles before the kill');

    c.kill('SIGKILL');
    await c.waitExit();
    // Missed by c: overwrites on a, deletes on b.
    await Promise.all([
      runBounded(range(0, 20), IN_FLIGHT, (j) => putKey(a.url, `k${j}`, 'a-down', ledger).then()),
      runBounded(range(20, 30), IN_FLIGHT, (j) => deleteKey(b.url, `k${j}`, ledger).then()),
    ]);

    await c.start();
    // Straight away: one write to c, then a look at whether c has finished any resync yet.
    await putKey(c.url, 'k0', 'c-first', ledger);
    const early = await clusterView(c.url);
    const runs = early.peers.map((peer) => peer.resyncTotals.runs).join('/');
    t.diagnostic(`resyncs c had completed when its first write was acknowledged: ${runs}`);
    // Then all at once: c overwrites keys a changed and b deleted while it was down, deletes
    // some, adds its own; a and b keep writing, partly to the same keys as c.
    await Promise.all([
      runBounded(range(0, 10), IN_FLIGHT, (j) => putKey(c.url, `k${j}`, 'c-back', ledger).then()),
      runBounded(range(25, 30), IN_FLIGHT, (j) => putKey(c.url, `k${j}`, 'c-back', ledger).then()),
      runBounded(range(30, 35), IN_FLIGHT, (j) => deleteKey(c.url, `k${j}`, ledger).then()),
      runBounded(range(0, 10), IN_FLIGHT, (j) => putKey(c.url, `c${j}`, j, ledger).then()),
      runBounded(range(5, 15), IN_FLIGHT, (j) => putKey(a.url, `k${j}`, 'a-up', ledger).then()),
      runBounded(range(35, 40), IN_FLIGHT, (j) => deleteKey(b.url, `k${j}`, ledger).then()),
      runBounded(range(0, 10), IN_FLIGHT, (j) => putKey(b.url, `b${j}`, j, ledger).then()),
    ]);

    await assertConverged(cluster.nodes, ledger, SETTLE_MS);
    t.diagnostic(`${ledger.writes} acknowledged writes, ${ledger.expected().size} live keys`);
  });
});

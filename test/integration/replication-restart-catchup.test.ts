// Goal: a node killed with SIGKILL while the others take puts and deletes (some deleting keys it
// holds) catches up after a restart on its data dir within 3 ping periods; method: ledger of
// acknowledged writes, full listings and /store/hash, timed from the restarted node's first /ping.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Cluster, useCluster } from '../helpers/node-process.ts';
import {
  assertContent,
  deleteKey,
  Ledger,
  PING_PERIOD_MS,
  PINGFREQ_SECONDS,
  putKey,
  runBounded,
  TIMEOUT_SECONDS,
  waitSameHash,
  withLogsOnFailure,
} from './replication-support.ts';

const KEYS = 60;
const IN_FLIGHT = 8;
const SETTLE_MS = 10_000;

let cluster: Cluster;
useCluster({ nodes: 3, pingfreq: PINGFREQ_SECONDS, timeout: TIMEOUT_SECONDS }, (started) => {
  cluster = started;
});

test('a killed node restarted on its data dir catches up within 3 ping periods', async (t) => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b, c] = [cluster.node(0), cluster.node(1), cluster.node(2)];
    const ledger = new Ledger();
    const keys = Array.from({ length: KEYS }, (_, j) => `k${j}`);
    await runBounded(keys, IN_FLIGHT, (key, j) =>
      putKey(j % 2 ? a.url : b.url, key, j, ledger).then(),
    );
    await waitSameHash(cluster.nodes, SETTLE_MS, 'the cluster settles before the kill');

    c.kill('SIGKILL');
    await c.waitExit();
    // While c is away: delete keys it holds (from both survivors), overwrite others, add new ones.
    await Promise.all([
      runBounded(keys.slice(0, 10), IN_FLIGHT, (key) => deleteKey(a.url, key, ledger).then()),
      runBounded(keys.slice(10, 20), IN_FLIGHT, (key) => deleteKey(b.url, key, ledger).then()),
      runBounded(keys.slice(20, 35), IN_FLIGHT, (key) =>
        putKey(a.url, key, 'new-a', ledger).then(),
      ),
      runBounded(keys.slice(30, 45), IN_FLIGHT, (key) =>
        putKey(b.url, key, 'new-b', ledger).then(),
      ),
      runBounded([0, 1, 2, 3, 4], IN_FLIGHT, (j) => putKey(b.url, `fresh${j}`, j, ledger).then()),
    ]);
    await waitSameHash([a, b], SETTLE_MS, 'the survivors agree before the restart');

    const spawnedMs = performance.now();
    await c.start();
    const readyMs = performance.now();
    const startupMs = readyMs - spawnedMs;
    // "Within a few ping periods" made concrete: 3, plus the start-up time just measured as slack
    // for a loaded machine (the worker pool warms up while the first resync runs).
    const deadlineMs = 3 * PING_PERIOD_MS + startupMs;
    await waitSameHash(cluster.nodes, SETTLE_MS, 'the restarted node catches up');
    const caughtUpMs = performance.now() - readyMs;
    t.diagnostic(
      `restart to /ping ${Math.round(startupMs)} ms; hashes equal ${Math.round(caughtUpMs)} ms ` +
        `after /ping (deadline ${Math.round(deadlineMs)} ms = 3 x ${PING_PERIOD_MS} ms ping + ` +
        'start-up)',
    );
    await assertContent(cluster.nodes, ledger.expected());
    assert.ok(
      caughtUpMs <= deadlineMs,
      `caught up after ${Math.round(caughtUpMs)} ms, over ${Math.round(deadlineMs)} ms`,
    );
  });
});

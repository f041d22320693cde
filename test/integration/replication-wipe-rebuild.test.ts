// Goal: a node whose data dir is wiped comes back under a new node id and is rebuilt from its
// peers, which notice the new id; method: kill it, delete its dir, restart it, then compare full
// listings and hashes, its /ping node-id header, and the peers' /cluster view of it.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import { test } from 'node:test';
import { type Cluster, useCluster, waitFor } from '../helpers/node-process.ts';
import {
  assertConverged,
  deleteKey,
  Ledger,
  PINGFREQ_SECONDS,
  peerView,
  pingNodeId,
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

test('a wiped node is rebuilt from its peers under a new node id', async (t) => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b, c] = [cluster.node(0), cluster.node(1), cluster.node(2)];
    const ledger = new Ledger();
    const keys = Array.from({ length: KEYS }, (_, j) => `k${j}`);
    // Some of the content was written on the node about to be wiped.
    await runBounded(keys, IN_FLIGHT, (key, j) =>
      putKey(cluster.node(j % 3).url, key, { j }, ledger).then(),
    );
    await runBounded(keys.slice(0, 6), IN_FLIGHT, (key) => deleteKey(c.url, key, ledger).then());
    await waitSameHash(cluster.nodes, SETTLE_MS, 'the cluster settles before the wipe');
    const oldId = await pingNodeId(c.url);

    c.kill('SIGKILL');
    await c.waitExit();
    await fsp.rm(c.dataDir, { recursive: true, force: true });
    // Written while it is gone: these reach it only through the rebuild.
    await runBounded(keys.slice(6, 12), IN_FLIGHT, (key) => deleteKey(a.url, key, ledger).then());
    await runBounded(keys.slice(12, 20), IN_FLIGHT, (key) =>
      putKey(b.url, key, 'b', ledger).then(),
    );

    await c.start();
    const newId = await pingNodeId(c.url);
    assert.notEqual(newId, oldId, 'a wiped data dir must give a new node id');
    await assertConverged(cluster.nodes, ledger, SETTLE_MS);
    for (const peer of [a, b]) {
      await waitFor(async () => (await peerView(peer.url, c.url)).nodeId === newId, {
        timeoutMs: SETTLE_MS,
        message: `${peer.name} /cluster shows ${c.name} with its new node id ${newId}`,
      });
    }
    const views = await Promise.all([a, b].map((peer) => peerView(peer.url, c.url)));
    t.diagnostic(
      `node id ${oldId} -> ${newId}; peers' last resync with it: ` +
        views.map((view) => JSON.stringify(view.lastResync)).join(' | '),
    );
  });
});

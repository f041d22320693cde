// Goal (issue 9, point 11): calling GET /sync/digest?from=<a peer's id> (what a resync's first
// step looks like) must not suppress the repairs between two nodes; method: two real nodes with
// a one-second anti-entropy period, one of them handed entries the other lacks (through POST
// /replicate from a third id, so only a resync can move them), while a probe calls each node's
// digest route with the other's id every 200 ms; the nodes must still converge.
import { test } from 'node:test';
import { getJson, postJson, sleep } from '../helpers/http.ts';
import { type Cluster, useCluster } from '../helpers/node-process.ts';
import {
  PINGFREQ_SECONDS,
  pingNodeId,
  TIMEOUT_SECONDS,
  waitSameHash,
  withLogsOnFailure,
} from './replication-support.ts';

const OTHER_NODE = '0000000000000f0f';
const PROBE_INTERVAL_MS = 200;
const CONVERGE_MS = 12_000;

let cluster: Cluster;
useCluster(
  {
    nodes: 2,
    pingfreq: PINGFREQ_SECONDS,
    timeout: TIMEOUT_SECONDS,
    extraArgs: ['--anti-entropy', '1'],
  },
  (started) => {
    cluster = started;
  },
);

test('digest calls that name a peer do not hold back the repair', async () => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b] = [cluster.node(0), cluster.node(1)];
    const [idA, idB] = [await pingNodeId(a.url), await pingNodeId(b.url)];
    let probing = true;
    const probe = (async () => {
      while (probing) {
        await Promise.all([
          getJson(`${a.url}/sync/digest?from=${idB}`),
          getJson(`${b.url}/sync/digest?from=${idA}`),
        ]);
        await sleep(PROBE_INTERVAL_MS);
      }
    })();
    try {
      // Versions of now: an entry older than the tombstone horizon (three days by default) that
      // a node does not hold is refused as coming from a node older than what was removed.
      const nowTs = Date.now() * 1024;
      const entries = Array.from({ length: 20 }, (_, index) => ({
        key: `only-on-a/${index}`,
        value: index,
        version: `${(nowTs + index).toString(16).padStart(14, '0')}-${OTHER_NODE}`,
      }));
      const answer = await postJson(`${a.url}/replicate`, { from: OTHER_NODE, entries });
      if (answer.status !== 200) throw new Error(answer.text);
      await waitSameHash(cluster.nodes, CONVERGE_MS, 'converged while probed');
    } finally {
      probing = false;
      await probe;
    }
  });
});

// Goal (issue 9, point 10, with the invariant that no acknowledged write is lost): versions a node
// wrote while its clock ran a minute ahead still reach a peer that never saw that node's clock,
// through a third node, after the clock was set right. Method: three real nodes; C is stopped;
// A restarts 60 s ahead and takes writes, which B accepts (B measured A's offset); A restarts at
// wall time and is stopped; C starts and must receive the writes from B within seconds, not once
// its own wall clock has caught up with them a minute later. A version an hour ahead, which no
// node's clock ever reached, is still refused by C.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOGICAL_PER_MS } from '../../src/clock.ts';
import { getJson, postJson } from '../helpers/http.ts';
import { type Cluster, useCluster, waitFor } from '../helpers/node-process.ts';
import { assertError } from './node-support.ts';
import {
  assertContent,
  Ledger,
  PINGFREQ_SECONDS,
  peerView,
  putKey,
  TIMEOUT_SECONDS,
  waitAllUp,
  withLogsOnFailure,
} from './replication-support.ts';

const AHEAD_MS = 60_000;
const KEYS = 20;
const DEADLINE_MS = 20_000;
const OTHER_NODE = '0000000000000f0f';

let cluster: Cluster;
useCluster({ nodes: 3, pingfreq: PINGFREQ_SECONDS, timeout: TIMEOUT_SECONDS }, (started) => {
  cluster = started;
});

test('writes made under a clock that ran ahead reach a node that never saw that clock', async () => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b, c] = [cluster.node(0), cluster.node(1), cluster.node(2)];
    await waitAllUp(cluster.nodes, DEADLINE_MS);
    await c.stop();
    await a.restart({ env: { PEERKV_CLOCK_OFFSET_MS: String(AHEAD_MS) } });
    await waitFor(async () => ((await peerView(b.url, a.url)).clockOffsetMs ?? 0) > AHEAD_MS / 2, {
      timeoutMs: DEADLINE_MS,
      message: "B measures A's clock a minute ahead",
    });
    const ledger = new Ledger();
    for (let i = 0; i < KEYS; i += 1) await putKey(a.url, `ahead/${i}`, i, ledger);
    await assertContentWithin([b], ledger);

    await a.restart({ env: { PEERKV_CLOCK_OFFSET_MS: '0' } });
    await a.stop();
    await c.start();
    // C measures B at offset 0 and cannot reach A: the versions are vouched for by B's clock.
    await assertContentWithin([c], ledger);

    const far = await postJson(`${c.url}/replicate`, {
      from: OTHER_NODE,
      entries: [{ key: 'far', value: 1, version: versionAt(Date.now() + 3_600_000) }],
    });
    assertError(far, 400, 'BAD_BATCH', 'an hour ahead');
    assert.equal((await getJson(`${c.url}/kv/far`)).status, 404);
  });
});

async function assertContentWithin(nodes: Cluster['nodes'], ledger: Ledger): Promise<void> {
  await waitFor(
    async () => {
      try {
        await assertContent(nodes, ledger.expected());
        return true;
      } catch {
        return false;
      }
    },
    { timeoutMs: DEADLINE_MS, message: 'the writes made ahead arrive' },
  );
}

function versionAt(ms: number): string {
  return `${(ms * LOGICAL_PER_MS).toString(16).padStart(14, '0')}-${OTHER_NODE}`;
}

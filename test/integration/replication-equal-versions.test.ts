// Goal (issue 9, point 1): two entries with equal versions but different content (what two
// nodes sharing a node id produce) converge instead of staying different forever; method: two
// real nodes with a short anti-entropy period, each handed its own content for the same keys
// under the same versions through POST /replicate (from a third id, so neither forwards it), then
// wait for equal /store/hash and check that both keep the entry with the higher content hash.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { entryHash } from '../../src/store/digest.ts';
import { getJson, postJson } from '../helpers/http.ts';
import { type Cluster, useCluster } from '../helpers/node-process.ts';
import {
  PINGFREQ_SECONDS,
  TIMEOUT_SECONDS,
  waitSameHash,
  withLogsOnFailure,
} from './replication-support.ts';

const OTHER_NODE = '0000000000000f0f';
const KEYS = 30;
const CONVERGE_MS = 15_000;

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

test('equal versions with different content converge on the higher content hash', async () => {
  await withLogsOnFailure(cluster, async () => {
    // Versions of now: older than the tombstone horizon, entries not held are refused.
    const nowTs = Date.now() * 1024;
    const version = (index: number) =>
      `${(nowTs + index).toString(16).padStart(14, '0')}-${OTHER_NODE}`;
    const entries = (side: string) =>
      Array.from({ length: KEYS }, (_, index) => ({
        key: `twin/${index}`,
        value: `${side}-${index}`,
        version: version(index),
      }));
    for (const [node, side] of [
      [cluster.node(0), 'a'],
      [cluster.node(1), 'b'],
    ] as const) {
      const answer = await postJson(`${node.url}/replicate`, {
        from: OTHER_NODE,
        entries: entries(side),
      });
      assert.equal(answer.status, 200, answer.text);
    }
    await waitSameHash(cluster.nodes, CONVERGE_MS, 'equal versions converge');
    for (let index = 0; index < KEYS; index += 1) {
      const hashOf = (side: string) =>
        entryHash(`twin/${index}`, version(index), JSON.stringify(`${side}-${index}`));
      const winner = hashOf('a') > hashOf('b') ? 'a' : 'b';
      for (const node of cluster.nodes) {
        const got = await getJson(`${node.url}/kv/${encodeURIComponent(`twin/${index}`)}`);
        assert.equal(
          (got.body as { value: string }).value,
          `${winner}-${index}`,
          `${node.name} key ${index}`,
        );
      }
    }
  });
});

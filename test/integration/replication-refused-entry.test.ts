// Goal (issue 9, point 3): one entry a peer refuses does not block later replication to it;
// method: node A started with a larger --max-value-bytes than its peer B (and anti-entropy
// too slow to help), a value on A that B refuses followed by small writes, which must reach B
// through A's push alone; A reports the refused entry in /cluster and its log, and both warn at
// start that their limits differ.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { getJson, putJson } from '../helpers/http.ts';
import { type Cluster, useCluster, waitFor } from '../helpers/node-process.ts';
import {
  PINGFREQ_SECONDS,
  peerView,
  TIMEOUT_SECONDS,
  withLogsOnFailure,
} from './replication-support.ts';

const SMALL_WRITES = 10;
const DEADLINE_MS = 10_000;
const LARGE_LIMIT = 2 * 1024 * 1024;

let cluster: Cluster;
useCluster(
  {
    nodes: 2,
    pingfreq: PINGFREQ_SECONDS,
    timeout: TIMEOUT_SECONDS,
    extraArgs: (index) => [
      '--anti-entropy',
      '3600',
      ...(index === 0 ? ['--max-value-bytes', String(LARGE_LIMIT)] : []),
    ],
  },
  (started) => {
    cluster = started;
  },
);

test('an entry the peer refuses is skipped and reported; the writes after it arrive', async () => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b] = [cluster.node(0), cluster.node(1)];
    await waitFor(
      () => fs.readFileSync(a.logPath, 'utf8').includes('peer accepts smaller values'),
      {
        timeoutMs: DEADLINE_MS,
        message: 'A warns that B accepts smaller values',
      },
    );
    const big = await putJson(`${a.url}/kv/big`, 'v'.repeat(1_500_000), { timeoutMs: 10_000 });
    assert.equal(big.status, 200, big.text);
    for (let index = 0; index < SMALL_WRITES; index += 1) {
      assert.equal((await putJson(`${a.url}/kv/small-${index}`, index)).status, 200);
    }
    await waitFor(
      async () => {
        const answers = await Promise.all(
          Array.from({ length: SMALL_WRITES }, (_, index) => getJson(`${b.url}/kv/small-${index}`)),
        );
        return answers.every((answer) => answer.status === 200);
      },
      { timeoutMs: DEADLINE_MS, message: 'every small write reached B' },
    );
    assert.equal((await getJson(`${b.url}/kv/big`)).status, 404, 'B did not take the big value');
    const view = (await peerView(a.url, b.url)) as unknown as {
      replication: {
        pendingChanges: number;
        refusedEntries: number;
        lastRefused: { keyBytes: number; reason: string } | null;
      };
      valueBytesMax: number | null;
    };
    assert.equal(view.valueBytesMax, 1024 * 1024, 'A knows B accepts 1 MiB values');
    assert.equal(view.replication.refusedEntries, 1);
    assert.equal(view.replication.lastRefused?.keyBytes, 3);
    assert.match(view.replication.lastRefused?.reason ?? '', /value exceeds/);
    await waitFor(async () => (await peerView(a.url, b.url)).replication.pendingChanges === 0, {
      timeoutMs: DEADLINE_MS,
      message: 'nothing left pending toward B',
    });
    assert.match(fs.readFileSync(a.logPath, 'utf8'), /peer refused entries/);
    const metrics = (await getJson(`${a.url}/metrics`)).text;
    assert.match(metrics, /^peerkv_replication_refused_entries_total\{[^}]*\} 1$/m, metrics);
  });
});

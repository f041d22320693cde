// Goal: a wiped node is filled once. Its peer yields to the rebuild (the wiped node pulls
// everything in its own resync) for as long as the rebuild keeps moving entries, instead of
// pushing the same entries after a fixed number of yields; method: load 60,000 keys into A,
// wipe B and restart it, then check that B took no /replicate call and A's resyncs sent it
// nothing, with equal hashes. Before the fix A gave up after five yields (~1 s at this
// --pingfreq), long before the rebuild ended, and pushed most of the store a second time.
// It failed on CI once more: A had used up its yields to B while B was still running during
// the bulk load, its resync that ran then failed as B was killed, and the wiped B's comeback
// did not reset the count, so A pushed it the whole store (test/unit/supervisor-want.test.ts).
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import { test } from 'node:test';
import { getJson, postJson } from '../helpers/http.ts';
import { type Cluster, useCluster, waitFor } from '../helpers/node-process.ts';
import { peerView, storeHash, waitLinkIdle, withLogsOnFailure } from './replication-support.ts';

const KEYS = 60_000;
const BATCH = 5_000;
const PINGFREQ_SECONDS = 0.1;
const REBUILD_MS = 60_000;
const BULK_NODE = '00000000000000b0';

let cluster: Cluster;
useCluster({ nodes: 2, pingfreq: PINGFREQ_SECONDS, timeout: 2 }, (started) => {
  cluster = started;
});

/** Entries of another node, as a peer's replication batch delivers them. */
function bulkBody(first: number, count: number, baseTimestamp: number): unknown {
  const entries = [];
  for (let index = first; index < first + count; index += 1) {
    const version = `${(baseTimestamp + index).toString(16).padStart(14, '0')}-${BULK_NODE}`;
    entries.push({ key: `k${index}`, value: 'x'.repeat(100), version });
  }
  return { from: BULK_NODE, entries };
}

async function replicateCalls(url: string): Promise<number> {
  const text = (await getJson(`${url}/metrics`)).text;
  const line =
    /^peerkv_http_request_duration_seconds_count\{[^}]*route="\/replicate"[^}]*\} (\S+)$/m;
  return Number(line.exec(text)?.[1] ?? 0);
}

test('a wiped node is filled once: its peer yields while the rebuild moves', async (t) => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b] = [cluster.node(0), cluster.node(1)];
    const baseTimestamp = (Date.now() - 3_600_000) * 1024;
    for (let first = 0; first < KEYS; first += BATCH) {
      const answer = await postJson(`${a.url}/replicate`, bulkBody(first, BATCH, baseTimestamp), {
        timeoutMs: 30_000,
      });
      assert.equal(answer.status, 200, answer.text);
    }
    const target = await storeHash(a.url);

    b.kill('SIGKILL');
    await b.waitExit();
    await fsp.rm(b.dataDir, { recursive: true, force: true });
    const started = performance.now();
    await b.start();
    await waitFor(async () => (await storeHash(b.url)) === target, {
      timeoutMs: REBUILD_MS,
      message: 'the wiped node holds the whole store',
    });
    const rebuildMs = performance.now() - started;
    const link = await waitLinkIdle(a.url, b.url, 10_000);
    t.diagnostic(
      `rebuilt ${KEYS} keys in ${Math.round(rebuildMs)} ms; A's last resync with B: ` +
        JSON.stringify(link.lastResync),
    );
    // Five yields take 0.5-1 s at this --pingfreq; the rebuild takes 2.4-7 s (a quiet machine, CI).
    assert.ok(rebuildMs > 1_500, 'the rebuild outlasts five yields, or the test shows nothing');
    assert.equal(link.resyncTotals.entriesSent, 0, "A's resyncs sent B nothing");
    assert.equal(await replicateCalls(b.url), 0, 'B took no POST /replicate');
    const view = await peerView(b.url, a.url);
    assert.equal(view.resyncTotals.entriesReceived, KEYS, 'B pulled every entry once');
  });
});
